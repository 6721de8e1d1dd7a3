package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"testing"

	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// adminCommand runs promote-admin or demote-admin against the test
// environment's database and Redis, as an operator would, with the
// settings of extra besides.
func adminCommand(t *testing.T, e *testEnv, cmd func(context.Context, []string, func(string) string, io.Writer, io.Writer) error, email string, extra map[string]string) {
	t.Helper()
	env := redisEnv(e.redis.Config)
	env["DATABASE_URL"], env["APP_REDIS_PREFIX"] = e.dsn, e.redis.Prefix
	maps.Copy(env, extra)
	if err := cmd(t.Context(), []string{email}, func(k string) string { return env[k] }, discard{}, discard{}); err != nil {
		t.Fatalf("admin command: %v", err)
	}
}

// A demotion counts at once, on every instance, even for an answer the
// response cache holds: the admin's cached users list is not served to the
// user they have become, whether the role changed through demote-admin
// (which also invalidates the caches) or in the database alone (cached
// answers are keyed by the role they were built for).
func TestDemotionBeatsCachedAnswers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	admin := a.register(t, "admin@example.com", "plum-tree-42", "Admin")
	a.register(t, "bob@example.com", "plum-tree-42", "Bob")
	const users = `{ users(first: 10) { totalCount edges { node { id name email } } } }`
	read := func(t *testing.T) {
		t.Helper()
		for _, s := range []*testServer{a, b, a} {
			r := s.do(t, admin.Access, users, nil).mustOK(t)
			if got := len(r.get("users.edges").([]any)); got != 2 {
				t.Fatalf("users: %d edges, want 2", got)
			}
		}
	}
	forbidden := func(t *testing.T) {
		t.Helper()
		for name, s := range map[string]*testServer{"same instance": a, "other instance": b} {
			r := s.do(t, admin.Access, users, nil)
			if got, want := r.code(t), "FORBIDDEN"; got != want {
				t.Errorf("%s: code=%q, want %q", name, got, want)
			}
			if r.get("users") != nil {
				t.Errorf("%s: the users list was served: %v", name, r.Data)
			}
		}
	}

	t.Run("demote-admin", func(t *testing.T) {
		adminCommand(t, e, promoteAdmin, "admin@example.com", nil)
		read(t)
		gen := func() string { return a.app.rdb.Get(t.Context(), e.redis.Prefix+"cache:{c}:users:gen").Val() }
		before := gen()
		adminCommand(t, e, demoteAdmin, "admin@example.com", nil)
		forbidden(t)
		if gen() == before {
			t.Errorf("demote-admin left the users generation at %q: responses cached before it stay reachable", before)
		}
		for _, s := range []*testServer{a, b} {
			if got := s.do(t, admin.Access, `{ me { role } }`, nil).mustOK(t).str("me.role"); got != "USER" {
				t.Errorf("me.role=%q, want USER", got)
			}
		}
	})
	t.Run("role changed in the database alone", func(t *testing.T) {
		adminCommand(t, e, promoteAdmin, "admin@example.com", nil)
		read(t)
		if err := a.app.db.Client.User.UpdateOneID(pulid.ID(admin.UserID)).SetRole(user.RoleUSER).Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		forbidden(t)
	})
}

// With introspection off (production's default), __schema and __type are
// refused as a validation error, not answered as a server fault; the
// __typename meta field still works.
func TestIntrospectionOffIsValidationError(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_INTROSPECTION"] = "false"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	for name, q := range map[string]string{
		"__schema":       `{ __schema { types { name } } }`,
		"__type":         `{ __type(name: "User") { fields { name } } }`,
		"in a fragment":  `query { ...F } fragment F on Query { __schema { queryType { name } } }`,
		"anonymous, too": `{ __schema { queryType { name } } }`,
		"beside a field": `{ me { id } __type(name: "Post") { name } }`,
	} {
		t.Run(name, func(t *testing.T) {
			token := tok.Access
			if name == "anonymous, too" {
				token = ""
			}
			r := s.do(t, token, q, nil)
			if got, want := r.code(t), "GRAPHQL_VALIDATION_FAILED"; got != want {
				t.Errorf("code=%q, want %q (%v)", got, want, r.Errors)
			}
			if got, want := r.Errors[0].Message, "introspection is disabled on this server"; got != want {
				t.Errorf("message=%q, want %q", got, want)
			}
			if got, want := r.Status, http.StatusOK; got != want { // a request error, under application/json
				t.Errorf("status=%d, want %d", got, want)
			}
		})
	}
	if got := s.do(t, tok.Access, `{ __typename me { __typename id } }`, nil).mustOK(t).str("me.__typename"); got != "User" {
		t.Errorf("__typename=%q, want User", got)
	}
}
