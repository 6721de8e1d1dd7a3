package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/graph/client"
)

// These tests drive the server through the generated Go client
// (graph/client), as a Go consumer of the API would: if an operation in
// graph/client/operations.graphql stops fitting what the server does, they
// fail.

// bearerDoer is the http.Client the generated client sends through: it adds
// the access token, if any, to every request.
type bearerDoer struct {
	hc    *http.Client
	token string
}

func (d bearerDoer) Do(req *http.Request) (*http.Response, error) {
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	return d.hc.Do(req)
}

// gql returns a generated-client connection to s, signed in with the access
// token (anonymous if empty).
func (s *testServer) gql(token string) graphql.Client {
	return graphql.NewClient(s.URL+"/query", bearerDoer{hc: s.Client(), token: token})
}

// gqlErr returns the first GraphQL error in err, failing the test if there is
// none. The generated client returns a gqlerror.List.
func gqlErr(t *testing.T, err error) *gqlerror.Error {
	t.Helper()
	var e *gqlerror.Error
	if errors.As(err, &e) {
		return e
	}
	var he *graphql.HTTPError
	if errors.As(err, &he) && len(he.Response.Errors) > 0 {
		return he.Response.Errors[0]
	}
	t.Fatalf("want a GraphQL error, got %v", err)
	return nil
}

// wantCode fails the test unless err is a GraphQL error with this
// extensions.code (and extensions.reason, if reason is not empty).
func wantCode(t *testing.T, what string, err error, code, reason string) *gqlerror.Error {
	t.Helper()
	e := gqlErr(t, err)
	if got := e.Extensions["code"]; got != code {
		t.Errorf("%s: code=%v, want %v (error %v)", what, got, code, e)
	}
	if reason != "" {
		if got := e.Extensions["reason"]; got != reason {
			t.Errorf("%s: reason=%v, want %v", what, got, reason)
		}
	}
	return e
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestGeneratedClientFlow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ctx := t.Context()
	anon := s.gql("")

	// register: bad input names the field; then the account.
	_, err := client.Register(ctx, anon, client.RegisterInput{Email: "ann@example.com", Password: "short", Name: "Ann"})
	if e := wantCode(t, "short password", err, "BAD_USER_INPUT", ""); e.Extensions["field"] != "password" {
		t.Errorf("short password: field=%v, want password", e.Extensions["field"])
	}
	reg, err := client.Register(ctx, anon, client.RegisterInput{Email: " Ann@Example.com ", Password: "correct horse", Name: "Ann"})
	mustNil(t, "register", err)
	if got, want := reg.Register.TokenType, "Bearer"; got != want {
		t.Errorf("tokenType=%q, want %q", got, want)
	}
	if got, want := reg.Register.ExpiresIn, 15*60; got != want {
		t.Errorf("expiresIn=%d, want %d", got, want)
	}
	if got := reg.Register.User.Email; got == nil || *got != "ann@example.com" {
		t.Errorf("email=%v, want ann@example.com", got)
	}
	if got, want := reg.Register.User.Role, client.RoleUser; got != want {
		t.Errorf("role=%q, want %q", got, want)
	}
	_, err = client.Register(ctx, anon, client.RegisterInput{Email: "ann@example.com", Password: "correct horse", Name: "Ann"})
	wantCode(t, "duplicate e-mail", err, "BAD_USER_INPUT", "")

	// login, me, updateMe.
	_, err = client.Login(ctx, anon, client.LoginInput{Email: "ann@example.com", Password: "wrong horse"})
	wantCode(t, "wrong password", err, "UNAUTHENTICATED", "INVALID_CREDENTIALS")
	login, err := client.Login(ctx, anon, client.LoginInput{Email: "ANN@example.com", Password: "correct horse"})
	mustNil(t, "login", err)
	ann := s.gql(login.Login.AccessToken)
	_, err = client.Me(ctx, anon)
	wantCode(t, "me without a token", err, "UNAUTHENTICATED", "NO_TOKEN")
	me, err := client.Me(ctx, ann)
	mustNil(t, "me", err)
	if got, want := me.Me.Id, reg.Register.User.Id; got != want {
		t.Errorf("me.id=%q, want %q", got, want)
	}
	if got, now := me.Me.CreatedAt, e.clock.Now(); got.Sub(now).Abs() > time.Minute {
		t.Errorf("me.createdAt=%v, want about %v", got, now)
	}
	upd, err := client.UpdateMe(ctx, ann, client.UpdateMeInput{Name: new("Ann B.")})
	mustNil(t, "updateMe", err)
	if got, want := upd.UpdateMe.Name, "Ann B."; got != want {
		t.Errorf("updateMe.name=%q, want %q", got, want)
	}
	_, err = client.UpdateMe(ctx, ann, client.UpdateMeInput{Name: new("")})
	wantCode(t, "empty name", err, "BAD_USER_INPUT", "")

	// createPost, then page through the posts newest first, two at a time.
	var ids []string
	for i := range 5 {
		p, err := client.CreatePost(ctx, ann, client.CreatePostInput{Title: fmt.Sprintf("post %d", i), Content: "body"})
		mustNil(t, "createPost", err)
		if got, want := p.CreatePost.Author.Name, "Ann B."; got != want {
			t.Errorf("author.name=%q, want %q", got, want)
		}
		ids = append(ids, p.CreatePost.Id)
	}
	_, err = client.CreatePost(ctx, ann, client.CreatePostInput{Title: "", Content: "body"})
	if e := wantCode(t, "empty title", err, "BAD_USER_INPUT", ""); e.Extensions["field"] != "title" {
		t.Errorf("empty title: field=%v, want title", e.Extensions["field"])
	}
	var seen []string
	var after *string
	for page := 0; ; page++ {
		r, err := client.Posts(ctx, ann, new(2), after, nil)
		mustNil(t, "posts", err)
		if got, want := r.Posts.TotalCount, len(ids); got != want {
			t.Fatalf("totalCount=%d, want %d", got, want)
		}
		for _, edge := range r.Posts.Edges {
			seen = append(seen, edge.Node.Id)
		}
		if !r.Posts.PageInfo.HasNextPage {
			break
		}
		if after = r.Posts.PageInfo.EndCursor; after == nil || page > len(ids) {
			t.Fatalf("page %d: hasNextPage without an endCursor, or no end", page)
		}
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)
	if !slices.Equal(seen, newestFirst) {
		t.Errorf("posts pages=%v, want %v (newest first)", seen, newestFirst)
	}
	// An order with no direction leaves it out: the server's ASC applies.
	asc, err := client.Posts(ctx, ann, nil, nil, &client.PostOrder{Field: client.PostOrderFieldCreatedAt})
	mustNil(t, "posts ordered", err)
	if got := asc.Posts.Edges[0].Node.Id; got != ids[0] {
		t.Errorf("orderBy CREATED_AT: first=%s, want the oldest %s", got, ids[0])
	}

	// updatePost: only the author; omitted fields stay.
	bobAuth, err := client.Register(ctx, anon, client.RegisterInput{Email: "bob@example.com", Password: "plum-tree-42", Name: "Bob"})
	mustNil(t, "register bob", err)
	bob := s.gql(bobAuth.Register.AccessToken)
	_, err = client.UpdatePost(ctx, bob, ids[0], client.UpdatePostInput{Title: new("pwned")})
	wantCode(t, "bob updates ann's post", err, "FORBIDDEN", "")
	_, err = client.DeletePost(ctx, bob, ids[0])
	wantCode(t, "bob deletes ann's post", err, "FORBIDDEN", "")
	up, err := client.UpdatePost(ctx, ann, ids[0], client.UpdatePostInput{Title: new("Hello again")})
	mustNil(t, "updatePost", err)
	if got, want := up.UpdatePost.Title+"|"+up.UpdatePost.Content, "Hello again|body"; got != want {
		t.Errorf("updated post=%q, want %q", got, want)
	}
	seenByBob, err := client.Post(ctx, bob, ids[0])
	mustNil(t, "post", err)
	if seenByBob.Post == nil || seenByBob.Post.Title != "Hello again" {
		t.Errorf("bob reads post %+v, want title %q", seenByBob.Post, "Hello again")
	}

	// deletePost: gone, and a second delete is NOT_FOUND.
	del, err := client.DeletePost(ctx, ann, ids[0])
	mustNil(t, "deletePost", err)
	if got, want := del.DeletePost, ids[0]; got != want {
		t.Errorf("deletePost=%q, want %q", got, want)
	}
	gone, err := client.Post(ctx, ann, ids[0])
	mustNil(t, "post after delete", err)
	if gone.Post != nil {
		t.Errorf("deleted post still readable: %+v", gone.Post)
	}
	_, err = client.DeletePost(ctx, ann, ids[0])
	wantCode(t, "delete again", err, "NOT_FOUND", "")

	// refresh rotates; the old refresh token presented again after the
	// grace window is theft, and ends that session.
	e.clock.Advance(time.Minute)
	ref, err := client.Refresh(ctx, anon, login.Login.RefreshToken)
	mustNil(t, "refresh", err)
	if ref.Refresh.RefreshToken == login.Login.RefreshToken || ref.Refresh.AccessToken == login.Login.AccessToken {
		t.Fatal("refresh returned the same tokens")
	}
	refreshed := s.gql(ref.Refresh.AccessToken)
	_, err = client.Me(ctx, refreshed)
	mustNil(t, "me after refresh", err)
	e.clock.Advance(time.Minute)
	_, err = client.Refresh(ctx, anon, login.Login.RefreshToken)
	wantCode(t, "old refresh token", err, "UNAUTHENTICATED", "REFRESH_TOKEN_REUSED")
	_, err = client.Me(ctx, refreshed)
	wantCode(t, "session of a reused refresh token", err, "UNAUTHENTICATED", "SESSION_ENDED")

	// mySessions: the registration's session is left, and is current.
	first := s.gql(reg.Register.AccessToken)
	sessions, err := client.MySessions(ctx, first)
	mustNil(t, "mySessions", err)
	if len(sessions.MySessions) != 1 || !sessions.MySessions[0].Current {
		t.Fatalf("mySessions=%+v, want only the current one", sessions.MySessions)
	}
	if ua := sessions.MySessions[0].UserAgent; ua == nil || !strings.HasPrefix(*ua, "Go-http-client") {
		t.Errorf("userAgent=%v, want Go-http-client/...", ua)
	}

	// logout: the access token is refused at once, and the refresh token.
	out, err := client.Logout(ctx, first, nil)
	mustNil(t, "logout", err)
	if !out.Logout {
		t.Error("logout=false, want true")
	}
	_, err = client.Me(ctx, first)
	wantCode(t, "me after logout", err, "UNAUTHENTICATED", "SESSION_ENDED")
	_, err = client.Refresh(ctx, anon, reg.Register.RefreshToken)
	wantCode(t, "refresh after logout", err, "UNAUTHENTICATED", "")
}

// The operations the main flow does not use: sessions by ID, password
// change, nodes, a user's posts, and the admin-only user list.
func TestGeneratedClientAccountAndAdmin(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ctx := t.Context()
	anon := s.gql("")
	input := client.RegisterInput{Email: "cat@example.com", Password: "plum-tree-42", Name: "Cat"}
	laptop, err := client.Register(ctx, anon, input)
	mustNil(t, "register", err)
	phone, err := client.Login(ctx, anon, client.LoginInput{Email: input.Email, Password: input.Password})
	mustNil(t, "login", err)
	cat := s.gql(phone.Login.AccessToken)

	// revokeSession ends the laptop's session from the phone.
	sessions, err := client.MySessions(ctx, cat)
	mustNil(t, "mySessions", err)
	if len(sessions.MySessions) != 2 {
		t.Fatalf("%d sessions, want 2", len(sessions.MySessions))
	}
	// Both began at the same (fake) instant, so pick by current, not order.
	i := slices.IndexFunc(sessions.MySessions, func(s client.MySessionsMySessionsSession) bool { return !s.Current })
	if i < 0 {
		t.Fatalf("no other session than the current one: %+v", sessions.MySessions)
	}
	rv, err := client.RevokeSession(ctx, cat, sessions.MySessions[i].Id)
	mustNil(t, "revokeSession", err)
	if !rv.RevokeSession {
		t.Error("revokeSession=false, want true")
	}
	_, err = client.Me(ctx, s.gql(laptop.Register.AccessToken))
	wantCode(t, "revoked laptop", err, "UNAUTHENTICATED", "SESSION_ENDED")

	// changePassword checks the policy and the current password, then
	// replaces the tokens of the caller's session.
	_, err = client.ChangePassword(ctx, cat, input.Password, "short")
	wantCode(t, "short new password", err, "BAD_USER_INPUT", "")
	_, err = client.ChangePassword(ctx, cat, "not the password", "a new password")
	if e := wantCode(t, "wrong current password", err, "BAD_USER_INPUT", ""); e.Extensions["field"] != "currentPassword" {
		t.Errorf("wrong current password: field=%v, want currentPassword", e.Extensions["field"])
	}
	cp, err := client.ChangePassword(ctx, cat, input.Password, "a new password")
	mustNil(t, "changePassword", err)
	_, err = client.Me(ctx, cat)
	wantCode(t, "access token before the change", err, "UNAUTHENTICATED", "")
	cat = s.gql(cp.ChangePassword.AccessToken)

	// node resolves to the concrete type; userWithPosts pages a user's posts.
	var ids []string
	for i := range 3 {
		p, err := client.CreatePost(ctx, cat, client.CreatePostInput{Title: fmt.Sprintf("p%d", i), Content: "c"})
		mustNil(t, "createPost", err)
		ids = append(ids, p.CreatePost.Id)
	}
	n, err := client.Node(ctx, cat, ids[0])
	mustNil(t, "node(post)", err)
	if p, ok := (*n.Node).(*client.NodeNodePost); !ok || p.Title != "p0" {
		t.Errorf("node(post)=%#v, want a NodeNodePost titled p0", *n.Node)
	}
	userID := cp.ChangePassword.User.Id
	n, err = client.Node(ctx, cat, userID)
	mustNil(t, "node(user)", err)
	if u, ok := (*n.Node).(*client.NodeNodeUser); !ok || u.Name != "Cat" {
		t.Errorf("node(user)=%#v, want a NodeNodeUser named Cat", *n.Node)
	}
	uwp, err := client.UserWithPosts(ctx, cat, userID, new(2), nil)
	mustNil(t, "userWithPosts", err)
	if got, want := uwp.User.Posts.TotalCount, 3; got != want {
		t.Errorf("user.posts.totalCount=%d, want %d", got, want)
	}
	if got := len(uwp.User.Posts.Edges); got != 2 || !uwp.User.Posts.PageInfo.HasNextPage {
		t.Errorf("user.posts(first: 2): %d edges, hasNextPage=%v", got, uwp.User.Posts.PageInfo.HasNextPage)
	}
	rest, err := client.UserWithPosts(ctx, cat, userID, nil, uwp.User.Posts.PageInfo.EndCursor)
	mustNil(t, "userWithPosts after", err)
	if got := len(rest.User.Posts.Edges); got != 1 || rest.User.Posts.Edges[0].Node.Id != ids[0] {
		t.Errorf("second page=%+v, want the oldest post %s", rest.User.Posts.Edges, ids[0])
	}

	// users is for admins.
	_, err = client.Users(ctx, cat, nil, nil)
	wantCode(t, "users as USER", err, "FORBIDDEN", "")
	if err := promoteAdmin(ctx, []string{input.Email}, func(k string) string {
		return map[string]string{"DATABASE_URL": e.dsn}[k]
	}, &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatalf("promote-admin: %v", err)
	}
	us, err := client.Users(ctx, cat, new(10), nil)
	mustNil(t, "users as ADMIN", err)
	if got, want := us.Users.TotalCount, 1; got != want || us.Users.Edges[0].Node.Role != client.RoleAdmin {
		t.Errorf("users: totalCount=%d (want %d), edges %+v", got, want, us.Users.Edges)
	}

	// logout ALL ends every session.
	out, err := client.Logout(ctx, cat, new(client.LogoutScopeAll))
	mustNil(t, "logout ALL", err)
	if !out.Logout {
		t.Error("logout=false, want true")
	}
	_, err = client.Me(ctx, cat)
	wantCode(t, "after logout ALL", err, "UNAUTHENTICATED", "SESSION_ENDED")
}
