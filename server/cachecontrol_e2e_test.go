package main

import "testing"

// The response cache shares an answer between viewers only when the schema
// allows it (@cacheControl): an e-mail address reaches its owner and no
// one else, me is each viewer's own, and sessions are never served from
// the cache at all.
func TestCachedAnswersKeepToTheirViewer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	alice := s.register(t, "alice@example.com", "plum-tree-42", "Alice")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	s.createPost(t, alice.Access, "hello", "world")

	t.Run("email", func(t *testing.T) {
		const q = `{ posts(first: 10) { edges { node { title author { name email } } } } }`
		for _, c := range []struct {
			name string
			who  tokens
			want any
		}{
			{"alice", alice, "alice@example.com"},
			{"bob after alice", bob, nil},
			{"alice after bob", alice, "alice@example.com"},
		} {
			r := s.do(t, c.who.Access, q, nil).mustOK(t)
			edges, _ := r.get("posts.edges").([]any)
			if len(edges) != 1 {
				t.Fatalf("%s: %d posts, want 1", c.name, len(edges))
			}
			got := edges[0].(map[string]any)["node"].(map[string]any)["author"].(map[string]any)["email"]
			if got != c.want {
				t.Errorf("%s: author.email=%v, want %v", c.name, got, c.want)
			}
		}
	})
	t.Run("me", func(t *testing.T) {
		const q = `{ me { id name posts(first: 10) { totalCount edges { node { title } } } } }`
		for _, who := range []tokens{alice, bob, alice} {
			if got := s.do(t, who.Access, q, nil).mustOK(t).str("me.id"); got != who.UserID {
				t.Errorf("me.id=%s, want %s", got, who.UserID)
			}
		}
	})
	t.Run("mySessions", func(t *testing.T) {
		const q = `{ mySessions { id } posts(first: 10) { totalCount edges { node { title } } } }`
		sessions := func() int {
			n, _ := s.do(t, alice.Access, q, nil).mustOK(t).get("mySessions").([]any)
			return len(n)
		}
		before := sessions()
		s.login(t, "alice@example.com", "plum-tree-42")
		if got, want := sessions(), before+1; got != want {
			t.Errorf("%d sessions after a login, want %d", got, want)
		}
	})
}
