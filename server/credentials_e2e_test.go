package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/authql/authql/cache/cachetest"
)

// An operation holds at most one credential mutation (register, login,
// refresh, logout, changePassword, revokeSession, and the two-factor code
// checks verifyMfa, confirmTotp, disableTotp), counting aliases and
// fragments: more is refused before anything runs, so nothing is charged
// to a rate limit and nothing is written.
func TestOneCredentialMutationPerOperation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_LOGIN_ACCOUNT"] = "1/1h"
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	in := map[string]any{"in": map[string]any{"email": "ann@example.com", "password": "plum-tree-42"}}
	const fields = `{ accessToken refreshToken }`
	keys := func() []string {
		k := append(cachetest.Keys(t, s.app.rdb, e.redis.Prefix+"*"), cachetest.Keys(t, s.app.rdb, "rate:"+e.redis.Prefix+"*")...)
		slices.Sort(k)
		return k
	}
	before := keys()

	for _, tc := range []struct {
		name, token, query string
		vars               map[string]any
	}{
		{"two aliased logins", "", `mutation($in: LoginInput!) { a: login(input: $in) ` + fields + ` b: login(input: $in) ` + fields + ` }`, in},
		{"a login and a refresh from a fragment", "",
			`mutation($in: LoginInput!) { login(input: $in) ` + fields + ` ...R } fragment R on Mutation { refresh(refreshToken: "made-up") ` + fields + ` }`, in},
		{"logouts in inline fragments", ann.Access, `mutation { logout ... on Mutation { b: logout(scope: ALL) ... on Mutation { c: logout } } }`, nil},
		{"refresh and register", "",
			`mutation { refresh(refreshToken: "made-up") ` + fields + ` register(input: {email: "new@example.com", password: "plum-tree-42", name: "N"}) ` + fields + ` }`, nil},
		{"changePassword and revokeSession", ann.Access,
			`mutation { changePassword(currentPassword: "plum-tree-42", newPassword: "plum-tree-43") ` + fields + ` revokeSession(id: "SE01M8KRENEZFPG63MNY42XXKTH7") }`, nil},
		{"aliased two-factor guesses", "",
			`mutation { a: verifyMfa(challenge: "mfa_x", code: "000000") ` + fields + ` b: verifyMfa(challenge: "mfa_x", code: "000001") ` + fields + ` }`, nil},
		{"confirmTotp and disableTotp", ann.Access, `mutation { confirmTotp(code: "000000") disableTotp(code: "000001") }`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.token, tc.query, tc.vars)
			if got, want := r.code(t), "GRAPHQL_VALIDATION_FAILED"; got != want {
				t.Fatalf("code=%q, want %q (%v)", got, want, r.Errors)
			}
			if got, want := r.Errors[0].Extensions["limit"], "credentialFields"; got != want {
				t.Errorf("limit=%v, want %v", got, want)
			}
			if got, want := r.Status, http.StatusOK; got != want { // a request error, under application/json
				t.Errorf("status=%d, want %d", got, want)
			}
			if r.Data != nil {
				t.Errorf("data=%v, want none", r.Data)
			}
		})
	}
	if after := keys(); !slices.Equal(after, before) {
		t.Errorf("refused operations wrote to Redis:\nbefore %v\nafter  %v", before, after)
	}
	if got := s.count(t, "users"); got != 1 {
		t.Errorf("users=%d, want 1", got)
	}
	// Ann's password still works, and her session too: her one login
	// attempt per hour was not spent.
	s.do(t, ann.Access, `{ me { id } }`, nil).mustOK(t)
	s.login(t, "ann@example.com", "plum-tree-42")

	// One credential field beside others is fine: a login and a me query in
	// one document, and the same login selected twice (merged into one).
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	const doc = `mutation In($in: LoginInput!) { login(input: $in) { accessToken } login(input: $in) { refreshToken } __typename }
		query Me { me { id } }`
	r := s.postJSON(t, "", map[string]any{"query": doc, "operationName": "In",
		"variables": map[string]any{"in": map[string]any{"email": "bob@example.com", "password": "plum-tree-42"}}}).mustOK(t)
	if r.str("login.accessToken") == "" || r.str("login.refreshToken") == "" {
		t.Errorf("login: %v", r.Data)
	}
	r = s.postJSON(t, bob.Access, map[string]any{"query": doc, "operationName": "Me"}).mustOK(t)
	if got := r.str("me.id"); got != bob.UserID {
		t.Errorf("me.id=%q, want %q", got, bob.UserID)
	}
}
