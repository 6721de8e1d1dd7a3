package graph

import (
	"fmt"

	"github.com/authql/authql/cache"
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
