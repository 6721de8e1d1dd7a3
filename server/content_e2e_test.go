package main

import (
	"strings"
	"testing"
)

// Stored content loses id and name attributes (DOM clobbering: an element
// named "currentUser" would shadow window.currentUser in a client's page),
// and images survive only from absolute https URLs.
func TestStoredContentDropsIDAndName(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	content := `<p id="currentUser">a</p><a name="config" href="https://example.com/">b</a>` +
		`<form name="f"><input name="x"></form><img id="i" src="https://img.example/p.png" alt="p">` +
		`<img src="/logout"><map name="m"><area href="https://example.com/"></map>`
	r := s.do(t, tok.Access, `mutation($c: String!) { createPost(input: {title: "t", content: $c}) { id content } }`,
		map[string]any{"c": content}).mustOK(t)
	id := r.str("createPost.id")
	stored := s.do(t, tok.Access, `query($id: ID!) { post(id: $id) { content } }`, map[string]any{"id": id}).mustOK(t)
	for _, got := range []string{r.str("createPost.content"), stored.str("post.content")} {
		for _, bad := range []string{"id=", "name=", "/logout", "<map", "<form", "<input"} {
			if strings.Contains(got, bad) {
				t.Errorf("content %q still contains %q", got, bad)
			}
		}
		for _, want := range []string{"<p>a</p>", `href="https://example.com/"`, `src="https://img.example/p.png"`} {
			if !strings.Contains(got, want) {
				t.Errorf("content %q lost %q", got, want)
			}
		}
	}
}
