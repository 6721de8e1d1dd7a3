package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A value ent's validators refuse reaches the client in our words, with
// BAD_USER_INPUT and the field, never as ent's "validator failed for field
// "Post.title"", and writes nothing.
func TestValidationFailuresInOurWords(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	postID := s.createPost(t, ann.Access, "title", "content")
	const (
		create   = `mutation($in: CreatePostInput!) { createPost(input: $in) { id } }`
		update   = `mutation($id: ID!, $in: UpdatePostInput!) { updatePost(id: $id, input: $in) { id } }`
		updateMe = `mutation($name: String) { updateMe(input: {name: $name}) { name } }`
	)
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
		field, msg  string
	}{
		{"empty title", create, map[string]any{"in": map[string]any{"title": " ", "content": "c"}}, "title", "title must be 1 to 200 characters"},
		{"long content", create, map[string]any{"in": map[string]any{"title": "t", "content": strings.Repeat("c", 50001)}}, "content", "content must be 1 to 50000 characters"},
		{"update: long title", update, map[string]any{"id": postID, "in": map[string]any{"title": strings.Repeat("t", 201)}}, "title", "title must be 1 to 200 characters"},
		{"update: empty content", update, map[string]any{"id": postID, "in": map[string]any{"content": ""}}, "content", "content must be 1 to 50000 characters"},
		{"updateMe: empty name", updateMe, map[string]any{"name": ""}, "name", "name must be 1 to 100 characters"},
		{"updateMe: long name", updateMe, map[string]any{"name": strings.Repeat("n", 101)}, "name", "name must be 1 to 100 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, ann.Access, tc.query, tc.vars)
			if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
				t.Fatalf("code=%q, want %q", got, want)
			}
			if got, want := r.Errors[0].Extensions["field"], tc.field; got != want {
				t.Errorf("field=%v, want %v", got, want)
			}
			if got, want := r.Errors[0].Message, tc.msg; got != want {
				t.Errorf("message=%q, want %q", got, want)
			}
		})
	}
	if got, want := s.count(t, "posts"), 1; got != want {
		t.Errorf("posts=%d, want %d", got, want)
	}
}

// Every argument decoder refuses a value that does not decode as the
// client's mistake (BAD_USER_INPUT naming the argument, HTTP 200), never
// as an outage (503 SERVICE_UNAVAILABLE: "retry") or in the decoder's own
// words (msgpack codes, Go types); sent as a variable, as a literal, and
// over GET.
func TestUndecodableArgumentsAreBadInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	promote(t, e, "ann@example.com")
	s.createPost(t, ann.Access, "title", "content")
	userCursor := s.do(t, ann.Access, `{ users(first: 1) { pageInfo { endCursor } } }`, nil).mustOK(t).str("users.pageInfo.endCursor")
	postCursor := s.do(t, ann.Access, `{ posts(first: 1) { pageInfo { endCursor } } }`, nil).mustOK(t).str("posts.pageInfo.endCursor")

	type arg struct{ field, name, typ string }
	cursorArgs := []arg{
		{`posts(%s) { totalCount }`, "after", "Cursor"},
		{`posts(%s) { totalCount }`, "before", "Cursor"},
		{`users(%s) { totalCount }`, "after", "Cursor"},
		{`me { posts(%s) { totalCount } }`, "before", "Cursor"},
	}
	cases := []struct {
		name  string
		args  []arg
		value any
	}{
		// "garbage" and "gqRmb28" end early: the decoder fails with
		// io.ErrUnexpectedEOF, once taken for a lost database connection.
		{"cursor garbage", cursorArgs, "garbage"},
		{"cursor truncated msgpack", cursorArgs, "gqRmb28"},
		{"cursor empty", cursorArgs, ""},
		{"cursor not msgpack", cursorArgs, "bm90IGEgY3Vyc29y"},
		{"cursor not base64", cursorArgs, "!!!"},
		{"cursor of the users list given to posts", cursorArgs[:2], userCursor},
		{"cursor of a posts list given to users", cursorArgs[2:3], postCursor},
		{"ID malformed", []arg{{`post(%s) { id }`, "id", "ID!"}, {`node(%s) { id }`, "id", "ID!"}, {`user(%s) { id }`, "id", "ID!"}}, "1; DROP TABLE posts"},
		{"ID empty", []arg{{`post(%s) { id }`, "id", "ID!"}}, ""},
	}
	for _, tc := range cases {
		for _, a := range tc.args {
			for _, via := range []string{"variable", "literal", "GET"} {
				t.Run(tc.name+"/"+strings.Fields(a.field)[0]+"."+a.name+"/"+via, func(t *testing.T) {
					var r gqlResponse
					switch lit, _ := json.Marshal(tc.value); via {
					case "variable":
						q := "query($v: " + a.typ + ") { " + strings.Replace(a.field, "%s", a.name+": $v", 1) + " }"
						r = s.do(t, ann.Access, q, map[string]any{"v": tc.value})
					case "literal":
						r = s.do(t, ann.Access, "{ "+strings.Replace(a.field, "%s", a.name+": "+string(lit), 1)+" }", nil)
					case "GET":
						q := "query($v: " + a.typ + ") { " + strings.Replace(a.field, "%s", a.name+": $v", 1) + " }"
						r = s.doGET(t, ann.Access, q, `{"v":`+string(lit)+`}`)
					}
					wantBadInput(t, r, a.name)
				})
			}
		}
	}
	// An ID of the wrong JSON type, which only a variable can carry.
	wantBadInput(t, s.do(t, ann.Access, `query($v: ID!) { post(id: $v) { id } }`, map[string]any{"v": 12}), "id")
	// Page sizes out of range, whichever way they come.
	wantBadInput(t, s.do(t, ann.Access, `query($n: Int) { posts(first: $n) { totalCount } }`, map[string]any{"n": 1 << 40}), "first")
	wantBadInput(t, s.doGET(t, ann.Access, `query($n: Int) { me { posts(last: $n) { totalCount } } }`, `{"n":101}`), "last")
	// Enums and order inputs are checked with the document: a request
	// error, GRAPHQL_VALIDATION_FAILED (never 5xx).
	for name, r := range map[string]gqlResponse{
		"orderBy field literal":    s.do(t, ann.Access, `{ posts(orderBy: {field: NOPE}) { totalCount } }`, nil),
		"orderBy field variable":   s.do(t, ann.Access, `query($o: PostOrder) { posts(orderBy: $o) { totalCount } }`, map[string]any{"o": map[string]any{"field": "NOPE"}}),
		"orderBy direction on GET": s.doGET(t, ann.Access, `query($o: PostOrder) { posts(orderBy: $o) { totalCount } }`, `{"o":{"field":"CREATED_AT","direction":"UP"}}`),
		"enum argument variable":   s.do(t, ann.Access, `mutation($s: LogoutScope) { logout(scope: $s) }`, map[string]any{"s": "NOPE"}),
		"first not an Int":         s.do(t, ann.Access, `query($n: Int) { posts(first: $n) { totalCount } }`, map[string]any{"n": 1.5}),
	} {
		if got, want := r.code(t), "GRAPHQL_VALIDATION_FAILED"; got != want {
			t.Errorf("%s: code=%q, want %q", name, got, want)
		}
		if r.Status >= 500 {
			t.Errorf("%s: status=%d", name, r.Status)
		}
	}
}

// wantBadInput checks a refused argument: one BAD_USER_INPUT error that
// names it, in the server's words, in an HTTP 200 response.
func wantBadInput(t *testing.T, r gqlResponse, field string) {
	t.Helper()
	if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
		t.Fatalf("code=%q, want %q (%s, status %d)", got, want, r.Errors[0].Message, r.Status)
	}
	if got, want := r.Status, http.StatusOK; got != want {
		t.Errorf("status=%d, want %d", got, want)
	}
	if got := r.Errors[0].Extensions["field"]; got != field {
		t.Errorf("field=%v, want %v", got, field)
	}
	msg := r.Errors[0].Message
	if !strings.HasPrefix(msg, field+" ") {
		t.Errorf("message %q does not start with the argument's name", msg)
	}
	for _, leak := range []string{"msgpack", "base64", "cannot decode", "unexpected", "EOF", "DROP"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message %q contains %q", msg, leak)
		}
	}
}

// doGET sends a GraphQL query over GET, variables as JSON text.
func (s *testServer) doGET(t *testing.T, token, query, variables string) gqlResponse {
	t.Helper()
	q := url.Values{"query": {query}}
	if variables != "" {
		q.Set("variables", variables)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?"+q.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}
