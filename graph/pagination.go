package graph

import (
	"time"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/graph/store"
)

// pageArgs checks first/last (store.CheckPageSize) and applies the
// default page size.
func pageArgs(first, last *int) (*int, *int, error) {
	for _, a := range []struct {
		name string
		v    *int
	}{{"first", first}, {"last", last}} {
		if a.v == nil {
			continue
		}
		if err := store.CheckPageSize(int64(*a.v)); err != nil {
			return nil, nil, badInput(a.name, err.Error())
		}
	}
	if first != nil && last != nil {
		return nil, nil, badInput("last", "cannot be combined with first")
	}
	if first == nil && last == nil {
		n := store.DefaultPageSize
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
	// eventList: the security trail, by time and the ID.
	eventList
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
		ok := a.c.ID.Valid() && (kind == postList && timed || kind == userList && a.c.Value == nil ||
			kind == eventList && timed && a.c.ID.Prefix() == pulid.EventPrefix)
		if !ok {
			return badInput(a.name, "is not a cursor of this list: pass a startCursor or endCursor of this list unchanged")
		}
	}
	return nil
}
