package store

import (
	"slices"
	"testing"
)

// Both lists (posts and users) turn a keyset read into a page here.
func TestKeysetPage(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		rows                  []int
		backward, after, befr bool
		want                  []int
		next, prev            bool
	}{
		{"forward, more follow", []int{1, 2, 3}, false, false, false, []int{1, 2}, true, false},
		{"forward, the end", []int{1, 2}, false, true, false, []int{1, 2}, false, true},
		{"forward, before a cursor", []int{1}, false, false, true, []int{1}, false, false},
		{"backward, more precede", []int{9, 8, 7}, true, false, false, []int{8, 9}, false, true},
		{"backward, the start, before a cursor", []int{9}, true, false, true, []int{9}, true, false},
	} {
		p := keysetPage(slices.Clone(tc.rows), keyset{n: 2, backward: tc.backward, after: tc.after, before: tc.befr})
		if page, next, prev := p.rows, p.hasNext, p.hasPrev; !slices.Equal(page, tc.want) || next != tc.next || prev != tc.prev {
			t.Errorf("%s: %v next=%v prev=%v, want %v next=%v prev=%v", tc.name, page, next, prev, tc.want, tc.next, tc.prev)
		}
	}
}
