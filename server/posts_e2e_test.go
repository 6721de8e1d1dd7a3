package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestPostsCRUDAndOwnership(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")

	id := s.createPost(t, ann.Access, "  Hello  ", "First post")
	got := s.do(t, bob.Access, `query($id: ID!) { post(id: $id) { id title content author { id name email } createdAt updatedAt } }`,
		map[string]any{"id": id}).mustOK(t)
	if got, want := got.str("post.title"), "Hello"; got != want {
		t.Errorf("title=%q, want %q (trimmed)", got, want)
	}
	if got.get("post.author.email") != nil {
		t.Errorf("bob sees ann's e-mail: %v", got.get("post.author.email"))
	}
	if got, want := got.str("post.author.name"), "Ann"; got != want {
		t.Errorf("author.name=%q, want %q", got, want)
	}

	// Bob may neither edit nor delete Ann's post; the row is untouched.
	upd := `mutation($id: ID!) { updatePost(id: $id, input: {title: "pwned"}) { id } }`
	del := `mutation($id: ID!) { deletePost(id: $id) }`
	for name, q := range map[string]string{"update": upd, "delete": del} {
		if got, want := s.do(t, bob.Access, q, map[string]any{"id": id}).code(t), "FORBIDDEN"; got != want {
			t.Errorf("bob %s: code=%q, want %q", name, got, want)
		}
	}
	after := s.do(t, ann.Access, `query($id: ID!) { post(id: $id) { title } }`, map[string]any{"id": id}).mustOK(t)
	if got, want := after.str("post.title"), "Hello"; got != want {
		t.Errorf("after refused edit: title=%q, want %q", got, want)
	}

	// Ann may; omitted fields stay.
	r := s.do(t, ann.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "Hello again"}) { title content } }`,
		map[string]any{"id": id}).mustOK(t)
	if got, want := r.str("updatePost.title")+"|"+r.str("updatePost.content"), "Hello again|First post"; got != want {
		t.Errorf("updated=%q, want %q", got, want)
	}

	// An admin may edit and delete anyone's post.
	if err := promoteAdmin(t.Context(), []string{"bob@example.com"}, func(k string) string {
		return map[string]string{"DATABASE_URL": e.dsn}[k]
	}, &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatalf("promote-admin: %v", err)
	}
	s.do(t, bob.Access, `mutation($id: ID!) { updatePost(id: $id, input: {content: "moderated"}) { id } }`, map[string]any{"id": id}).mustOK(t)
	admin := s.do(t, bob.Access, `query($id: ID!) { post(id: $id) { author { email } } }`, map[string]any{"id": id}).mustOK(t)
	if got, want := admin.str("post.author.email"), "ann@example.com"; got != want {
		t.Errorf("admin sees author email %q, want %q", got, want)
	}
	d := s.do(t, bob.Access, del, map[string]any{"id": id}).mustOK(t)
	if got, want := d.str("deletePost"), id; got != want {
		t.Errorf("deletePost=%q, want %q", got, want)
	}
	if got := s.do(t, ann.Access, `query($id: ID!) { post(id: $id) { id } }`, map[string]any{"id": id}).mustOK(t).get("post"); got != nil {
		t.Errorf("deleted post still readable: %v", got)
	}
	if got, want := s.do(t, ann.Access, del, map[string]any{"id": id}).code(t), "NOT_FOUND"; got != want {
		t.Errorf("delete again: code=%q, want %q", got, want)
	}
}

func TestPostsPagination(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	var ids []string
	for i := range 25 {
		ids = append(ids, s.createPost(t, ann.Access, fmt.Sprintf("post %02d", i), "body"))
	}
	const q = `query($first: Int, $after: Cursor, $last: Int, $before: Cursor) {
		posts(first: $first, after: $after, last: $last, before: $before) {
			totalCount
			edges { cursor node { id title } }
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		}
	}`
	// Newest first, 20 by default, then the rest by cursor.
	var seen []string
	vars := map[string]any{}
	for page := 0; ; page++ {
		r := s.do(t, ann.Access, q, vars).mustOK(t)
		if got, want := r.get("posts.totalCount"), float64(25); got != want {
			t.Fatalf("totalCount=%v, want %v", got, want)
		}
		for _, edge := range r.get("posts.edges").([]any) {
			seen = append(seen, edge.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		if r.get("posts.pageInfo.hasNextPage") != true {
			break
		}
		vars = map[string]any{"first": 10, "after": r.str("posts.pageInfo.endCursor")}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("saw %d posts, want %d", len(seen), len(ids))
	}
	for i := range ids {
		if got, want := seen[i], ids[len(ids)-1-i]; got != want {
			t.Fatalf("position %d: id=%s, want %s (newest first)", i, got, want)
		}
	}
	// Backwards from the end.
	r := s.do(t, ann.Access, q, map[string]any{"last": 3}).mustOK(t)
	edges := r.get("posts.edges").([]any)
	if got, want := edges[2].(map[string]any)["node"].(map[string]any)["id"], ids[0]; got != want {
		t.Errorf("last:3 ends with %v, want the oldest %v", got, want)
	}

	for _, tc := range []struct {
		name  string
		vars  map[string]any
		field string
	}{
		{"first over 100", map[string]any{"first": 101}, "first"},
		{"negative first", map[string]any{"first": -1}, "first"},
		{"last over 100", map[string]any{"last": 500}, "last"},
		{"first and last", map[string]any{"first": 1, "last": 1}, "last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, ann.Access, q, tc.vars)
			if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
				t.Errorf("code=%q, want %q", got, want)
			}
			if got, want := r.Errors[0].Extensions["field"], tc.field; got != want {
				t.Errorf("field=%v, want %v", got, want)
			}
		})
	}
	// A cursor that is not one of ours is bad input, not a server error.
	r = s.do(t, ann.Access, q, map[string]any{"after": "bm90IGEgY3Vyc29y"})
	if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
		t.Errorf("forged cursor: code=%q, want %q", got, want)
	}

	// The author's own list, and Node lookups.
	u := s.do(t, ann.Access, `query($id: ID!) { user(id: $id) { posts(first: 2) { totalCount edges { node { id } } } } node(id: $id) { id ... on User { name } } }`,
		map[string]any{"id": ann.UserID}).mustOK(t)
	if got, want := u.get("user.posts.totalCount"), float64(25); got != want {
		t.Errorf("user.posts.totalCount=%v, want %v", got, want)
	}
	if got, want := u.str("node.name"), "Ann"; got != want {
		t.Errorf("node.name=%q, want %q", got, want)
	}
	n := s.do(t, ann.Access, `query($id: ID!) { node(id: $id) { id ... on Post { title } } }`, map[string]any{"id": ids[0]}).mustOK(t)
	if got, want := n.str("node.title"), "post 00"; got != want {
		t.Errorf("node(post).title=%q, want %q", got, want)
	}
	// Unknown and malformed IDs.
	if got := s.do(t, ann.Access, `{ node(id: "PO01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`, nil).mustOK(t).get("node"); got != nil {
		t.Errorf("unknown node=%v, want null", got)
	}
	if got, want := s.do(t, ann.Access, `{ post(id: "1; DROP TABLE posts") { id } }`, nil).code(t), "BAD_USER_INPUT"; got != want {
		t.Errorf("malformed id: code=%q, want %q", got, want)
	}
}

// Every bad input is refused with BAD_USER_INPUT naming the field, and
// writes nothing.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	postID := s.createPost(t, ann.Access, "title", "content")
	const register = `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`
	reg := func(email, pw, name string) map[string]any {
		return map[string]any{"in": map[string]any{"email": email, "password": pw, "name": name}}
	}
	const create = `mutation($in: CreatePostInput!) { createPost(input: $in) { id } }`
	post := func(title, content string) map[string]any {
		return map[string]any{"in": map[string]any{"title": title, "content": content}}
	}
	const update = `mutation($id: ID!, $in: UpdatePostInput!) { updatePost(id: $id, input: $in) { id } }`
	const updateMe = `mutation($name: String) { updateMe(input: {name: $name}) { name } }`
	cases := []struct {
		name, token, query string
		vars               map[string]any
		field              string
	}{
		{"duplicate e-mail", "", register, reg("ANN@example.com", "plum-tree-42", "Ann 2"), "email"},
		{"malformed e-mail", "", register, reg("not-an-email", "plum-tree-42", "X"), "email"},
		{"e-mail with display name", "", register, reg("X <x@example.com>", "plum-tree-42", "X"), "email"},
		{"e-mail without domain dot", "", register, reg("x@localhost", "plum-tree-42", "X"), "email"},
		{"short password", "", register, reg("x@example.com", "1234567", "X"), "password"},
		{"long password", "", register, reg("x@example.com", strings.Repeat("p", 129), "X"), "password"},
		{"empty name", "", register, reg("x@example.com", "plum-tree-42", "   "), "name"},
		{"long name", "", register, reg("x@example.com", "plum-tree-42", strings.Repeat("n", 101)), "name"},
		{"empty title", ann.Access, create, post("", "content"), "title"},
		{"long title", ann.Access, create, post(strings.Repeat("t", 201), "content"), "title"},
		{"empty content", ann.Access, create, post("title", ""), "content"},
		{"long content", ann.Access, create, post("title", strings.Repeat("c", 50001)), "content"},
		{"update: empty title", ann.Access, update, map[string]any{"id": postID, "in": map[string]any{"title": " "}}, "title"},
		{"update: long content", ann.Access, update, map[string]any{"id": postID, "in": map[string]any{"content": strings.Repeat("c", 50001)}}, "content"},
		{"updateMe: empty name", ann.Access, updateMe, map[string]any{"name": ""}, "name"},
	}
	users, posts := s.count(t, "users"), s.count(t, "posts")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.token, tc.query, tc.vars)
			if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
				t.Fatalf("code=%q, want %q (%s)", got, want, r.Errors[0].Message)
			}
			if got, want := r.Errors[0].Extensions["field"], tc.field; got != want {
				t.Errorf("field=%v, want %v", got, want)
			}
			if !strings.Contains(r.Errors[0].Message, tc.field) {
				t.Errorf("message %q does not name the field", r.Errors[0].Message)
			}
		})
	}
	if got := s.count(t, "users"); got != users {
		t.Errorf("users: %d rows, want %d", got, users)
	}
	if got := s.count(t, "posts"); got != posts {
		t.Errorf("posts: %d rows, want %d", got, posts)
	}
	p := s.do(t, ann.Access, `query($id: ID!) { post(id: $id) { title content } me { name } }`, map[string]any{"id": postID}).mustOK(t)
	if got, want := p.str("post.title")+"|"+p.str("post.content")+"|"+p.str("me.name"), "title|content|Ann"; got != want {
		t.Errorf("after refused updates: %q, want %q", got, want)
	}
	// Limits count characters, not bytes: 200 characters of Hangul fit.
	s.createPost(t, ann.Access, strings.Repeat("글", 200), "내용")
}

func TestUsersAdminOnlyAndEmailVisibility(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	const users = `{ users(first: 10) { totalCount edges { node { name email } } } }`
	if got, want := s.do(t, ann.Access, users, nil).code(t), "FORBIDDEN"; got != want {
		t.Errorf("users as USER: code=%q, want %q", got, want)
	}
	if got, want := s.do(t, "", users, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("users without token: code=%q, want %q", got, want)
	}
	// Email: own yes, other's no.
	r := s.do(t, ann.Access, `query($id: ID!) { me { email } user(id: $id) { name email } }`, map[string]any{"id": bob.UserID}).mustOK(t)
	if got, want := r.str("me.email"), "ann@example.com"; got != want {
		t.Errorf("me.email=%q, want %q", got, want)
	}
	if r.get("user.email") != nil {
		t.Errorf("ann sees bob's email %v", r.get("user.email"))
	}
	if err := promoteAdmin(t.Context(), []string{"ann@example.com"}, func(k string) string {
		return map[string]string{"DATABASE_URL": e.dsn}[k]
	}, &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	// The promotion takes effect on the next request, without a new token.
	a := s.do(t, ann.Access, users, nil).mustOK(t)
	if got, want := a.get("users.totalCount"), float64(2); got != want {
		t.Errorf("totalCount=%v, want %v", got, want)
	}
	edges := a.get("users.edges").([]any)
	if got, want := edges[1].(map[string]any)["node"].(map[string]any)["email"], "bob@example.com"; got != want {
		t.Errorf("admin sees email %v, want %v (oldest first)", got, want)
	}
	if err := promoteAdmin(t.Context(), []string{"nobody@example.com"}, func(k string) string {
		return map[string]string{"DATABASE_URL": e.dsn}[k]
	}, &strings.Builder{}, &strings.Builder{}); err == nil {
		t.Error("promote-admin of an unknown e-mail succeeded")
	}
}

// Nothing requires a token that the contract does not mark @auth, and every
// @auth field refuses a missing one.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	for _, q := range []string{
		`{ me { id } }`,
		`{ posts { totalCount } }`,
		`{ post(id: "PO01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`,
		`{ user(id: "US01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`,
		`{ node(id: "US01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`,
		`mutation { logout }`,
		`mutation { updateMe(input: {name: "x"}) { id } }`,
		`mutation { createPost(input: {title: "t", content: "c"}) { id } }`,
		`mutation { updatePost(id: "PO01ARZ3NDEKTSV4RRFFQ69G5FAV", input: {title: "t"}) { id } }`,
		`mutation { deletePost(id: "PO01ARZ3NDEKTSV4RRFFQ69G5FAV") }`,
	} {
		r := s.do(t, "", q, nil)
		if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("%s: code=%q, want %q", q, got, want)
		}
	}
	if got := s.count(t, "posts"); got != 0 {
		t.Errorf("posts=%d after unauthenticated createPost", got)
	}
}
