package main

import (
	"fmt"
	"strings"
	"testing"
)

// A client asking for a whole page (100) of every contract field fits the
// default complexity limit: a connection's edges count once per item,
// its pageInfo and totalCount once. Aliases and nested lists still
// multiply, so a truly expensive query is still refused.
func TestFullPagesFitTheComplexityLimit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_API"] = "100000/1m" // five full pages exceed the default budget of 6,000 a minute
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	promote(t, e, "ann@example.com")
	for i := range 3 {
		s.createPost(t, ann.Access, fmt.Sprintf("post %d", i), "body")
	}
	const (
		pageInfo = `totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`
		post     = `id title content createdAt updatedAt author { id email name role createdAt }`
		user     = `id email name role createdAt`
	)
	page := func(field, node string) string {
		return field + " { " + pageInfo + " edges { cursor node { " + node + " } } }"
	}
	for _, tc := range []struct{ name, query string }{
		{"posts", "{ " + page("posts(first: 100)", post) + " }"},
		{"posts backwards, ordered", "{ " + page("posts(last: 100, orderBy: {field: UPDATED_AT, direction: DESC})", post) + " }"},
		{"users", "{ " + page("users(first: 100)", user) + " }"},
		{"User.posts", `query($id: ID!) { user(id: $id) { ` + user + " " + page("posts(first: 100)", post) + " } }"},
		{"me.posts", "{ me { " + user + " " + page("posts(first: 100)", post) + " } }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, ann.Access, tc.query, map[string]any{"id": ann.UserID}).mustOK(t)
			cost, _ := r.Extensions["cost"].(map[string]any)
			t.Logf("complexity %v", cost["complexity"])
		})
	}

	for _, tc := range []struct{ name, query string }{
		{"100 posts × 100 of their author's posts", `{ posts(first: 100) { edges { node { author { posts(first: 100) { edges { node { id } } } } } } } }`},
		{"100 users × 100 posts each", `{ users(first: 100) { edges { node { posts(first: 100) { edges { node { id title } } } } } } }`},
		{"two full pages under aliases", "{ a: " + page("posts(first: 100)", post) + " b: " + page("posts(first: 100)", post) + " }"},
		{"a full page of edges asked for twice", "{ posts(first: 100) { a: edges { node { " + post + " } } b: edges { node { " + post + " } } } }"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			r := s.do(t, ann.Access, tc.query, nil)
			if got, want := r.code(t), "COMPLEXITY_LIMIT_EXCEEDED"; got != want {
				t.Errorf("code=%q, want %q", got, want)
			}
		})
	}
	if strings.Contains(s.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", s.logs)
	}
}
