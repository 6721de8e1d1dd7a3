package main

import (
	"maps"
	"slices"
	"testing"
)

// One document sent again and again with other variables answers each
// request's own selection: the fields the executor keeps collected for an
// operation (graph/collect.go) never carry one request's @skip, @include
// or @defer choice into another's, at any depth or in fragments.
func TestOneDocumentAnswersEachRequestsVariables(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached() // the executor answers every request
	s := e.start(t)
	seed(t, s.app.db.Client, 2, 2)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	const q = `query($full: Boolean!) {
		posts(first: 3) { edges { node { id ...P author { id name @include(if: $full) } } } }
	}
	fragment P on Post { content @include(if: $full) title @skip(if: $full) }`
	for _, full := range []bool{true, false, false, true, false, true} {
		edges := s.do(t, tok.Access, q, map[string]any{"full": full}).mustOK(t).get("posts.edges").([]any)
		if len(edges) != 3 {
			t.Fatalf("full=%v: %d posts, want 3", full, len(edges))
		}
		wantPost, wantAuthor := []string{"author", "id", "title"}, []string{"id"}
		if full {
			wantPost, wantAuthor = []string{"author", "content", "id"}, []string{"id", "name"}
		}
		for _, edge := range edges {
			node := edge.(map[string]any)["node"].(map[string]any)
			if got := slices.Sorted(maps.Keys(node)); !slices.Equal(got, wantPost) {
				t.Errorf("full=%v: a post answers %v, want %v", full, got, wantPost)
			}
			if got := slices.Sorted(maps.Keys(node["author"].(map[string]any))); !slices.Equal(got, wantAuthor) {
				t.Errorf("full=%v: its author answers %v, want %v", full, got, wantAuthor)
			}
		}
	}
}
