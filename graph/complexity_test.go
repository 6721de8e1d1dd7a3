package graph

import (
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/vektah/gqlparser/v2"

	"github.com/authql/authql/graph/store"
)

// Every contract field of a post, with every field of its author.
const fullPost = `id title content createdAt updatedAt author { id email name role createdAt }`

func TestConnectionPricing(t *testing.T) {
	es := NewSchema(Deps{})
	price := func(t *testing.T, q string, vars map[string]any) int {
		t.Helper()
		doc, errs := gqlparser.LoadQuery(es.Schema(), q)
		if errs != nil {
			t.Fatalf("%s: %v", q, errs)
		}
		return complexity.Calculate(t.Context(), es, doc.Operations[0], vars)
	}
	page := func(list string, n int, fields string) string {
		return fmt.Sprintf(`%s(first: %d) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { %s } } }`, list, n, fields)
	}
	for _, tc := range []struct {
		name  string
		query string
		want  int
	}{
		// 1 + (totalCount 1 + pageInfo 5) + 100 × (edges 1 + cursor 1 + node 1 + 5 + author 6)
		{"full page of posts", "{ " + page("posts", 100, fullPost) + " }", 1 + 6 + 100*14},
		// 1 + 6 + 100 × (1 + 1 + 1 + id email name role createdAt)
		{"full page of users", "{ " + page("users", 100, "id email name role createdAt") + " }", 1 + 6 + 100*8},
		{"a user's full page of posts", `{ user(id: "US01ARZ3NDEKTSV4RRFFQ69G5FAV") { ` + page("posts", 100, fullPost) + ` } }`, 1 + 1 + 6 + 100*14},
		{"pageInfo and totalCount alone", `{ posts(first: 100) { totalCount pageInfo { endCursor } } }`, 1 + 1 + 2},
		{"default page size", `{ posts { edges { node { id } } } }`, 1 + store.DefaultPageSize*3},
		{"last", `{ posts(last: 7) { edges { node { id } } } }`, 1 + 7*3},
		{"variables", `query($n: Int) { posts(first: $n) { edges { node { id } } } }`, 1 + 40*3},
		{"aliased connections each count", `{ a: posts(first: 10) { edges { node { id } } } b: posts(first: 10) { edges { node { id } } } }`, 2 * (1 + 10*3)},
		{"aliased edges each count per item", `{ posts(first: 10) { totalCount a: edges { cursor } b: edges { node { id } } } }`, 1 + 1 + 10*(2+3)},
		{"edges in a fragment", `{ posts(first: 10) { ...P } } fragment P on PostConnection { totalCount edges { node { id } } }`, 1 + 1 + 10*3},
		// 1 + 100 × (edges 1 + node 1 + author 1 + inner (1 + 100 × 3))
		{"nested connections multiply", `{ posts(first: 100) { edges { node { author { posts(first: 100) { edges { node { id } } } } } } } }`, 1 + 100*(3+1+100*3)},
		// An argument that does not decode: priced all the same (the
		// resolver refuses it), not as an absurd number.
		{"undecodable cursor", `{ posts(first: 10, after: "garbage") { edges { node { id } } } }`, 1 + 10*3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := price(t, tc.query, map[string]any{"n": int64(40)}); got != tc.want {
				t.Errorf("complexity=%d, want %d", got, tc.want)
			}
		})
	}
	// The bound docs/API.md and docs/SECURITY.md promise: a full page of each list fits the
	// default limit; the nested lists do not.
	if got := price(t, "{ "+page("posts", 100, fullPost)+" }", nil); got > DefaultLimits().MaxComplexity {
		t.Errorf("full page of posts: %d > %d", got, DefaultLimits().MaxComplexity)
	}
}
