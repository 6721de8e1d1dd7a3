package graph

import (
	"fmt"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
)

// Page size limits. Every list is capped, so no query can ask the database
// for an unbounded number of rows.
const (
	DefaultPageSize = cache.DefaultPageSize
	MaxPageSize     = 100
)

// pageArgs checks first/last and applies the default page size. A page
// larger than MaxPageSize is refused (not silently shortened), so a client
// never mistakes a cut page for the end of the list.
func pageArgs(first, last *int) (*int, *int, error) {
	for _, a := range []struct {
		name string
		v    *int
	}{{"first", first}, {"last", last}} {
		if a.v != nil && (*a.v < 0 || *a.v > MaxPageSize) {
			return nil, nil, badInput(a.name, fmt.Sprintf("must be between 0 and %d", MaxPageSize))
		}
	}
	if first != nil && last != nil {
		return nil, nil, badInput("last", "cannot be combined with first")
	}
	if first == nil && last == nil {
		n := DefaultPageSize
		first = &n
	}
	return first, last, nil
}

// listKind says what the cursors of a list carry: a post list is ordered
// by a time and the ID, the users list by the ID alone.
type listKind int

const (
	postList listKind = iota
	userList
)

// checkCursors refuses a cursor that decodes but is not one of this kind
// of list (a user list's cursor given to posts), naming the argument. A
// cursor that does not decode at all never reaches a resolver: the error
// presenter words it.
func checkCursors(kind listKind, after, before *ent.Cursor) error {
	for _, a := range []struct {
		name string
		c    *ent.Cursor
	}{{"after", after}, {"before", before}} {
		if a.c == nil {
			continue
		}
		_, timed := a.c.Value.(time.Time)
		ok := a.c.ID.Valid() && (kind == postList && timed || kind == userList && a.c.Value == nil)
		if !ok {
			return badInput(a.name, "is not a cursor of this list: pass a startCursor or endCursor of this list unchanged")
		}
	}
	return nil
}
