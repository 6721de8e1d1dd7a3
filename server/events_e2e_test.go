package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const eventsQuery = `query($first: Int, $after: Cursor) { mySecurityEvents(first: $first, after: $after) {
	totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id kind createdAt address device } } } }`

// events returns the kinds of the caller's trail, newest first, and the
// address of the newest event.
func (s *testServer) events(t *testing.T, token string) (kinds []string, newest map[string]any) {
	t.Helper()
	r := s.do(t, token, eventsQuery, map[string]any{"first": 100}).mustOK(t)
	for i, e := range r.get("mySecurityEvents.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		if i == 0 {
			newest = n
		}
		kinds = append(kinds, n["kind"].(string))
	}
	return kinds, newest
}

func TestSecurityEvents(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	s := e.start(t)
	u := enableMFA(t, e, s, "trail@example.com") // MFA_ENABLED
	other := s.register(t, "other@example.com", "another good password", "Other")

	login := `mutation($in: LoginInput!) { login(input: $in) { accessToken } }`
	creds := func(pw string) map[string]any {
		return map[string]any{"in": map[string]any{"email": u.email, "password": pw}}
	}
	home := caller{addr: "203.0.113.9"}
	// The first sign-in of the account is nobody's new device.
	ch := s.as(t, home, login, creds(u.password)).Errors[0].Extensions["mfaChallenge"].(string)
	r := s.as(t, home, verifyQuery, map[string]any{"ch": ch, "c": code(t, u.secret, e.clock.Now())}).mustOK(t) // SIGN_IN
	strong := r.str("verifyMfa.accessToken")
	e.clock.Advance(30 * time.Second)
	s.as(t, home, login, creds("wrong password!")) // SIGN_IN_FAILED
	if got := s.as(t, caller{addr: "198.51.100.7"}, login, creds(u.password)).code(t); got != "MFA_REQUIRED" {
		t.Fatalf("login: %s", got)
	}
	// A code for the challenge from elsewhere: a sign-in from a new device.
	ch = s.as(t, caller{addr: "198.51.100.7"}, login, creds(u.password)).Errors[0].Extensions["mfaChallenge"].(string)
	s.as(t, caller{addr: "198.51.100.7"}, verifyQuery, map[string]any{"ch": ch, "c": u.recovery[0]}).mustOK(t) // SIGN_IN, NEW_DEVICE
	s.do(t, strong, `mutation { regenerateRecoveryCodes }`, nil).mustOK(t)                                     // RECOVERY_CODES_REGENERATED
	e.clock.Advance(30 * time.Second)
	s.do(t, strong, `mutation($c: String!) { disableTotp(code: $c) }`, map[string]any{"c": code(t, u.secret, e.clock.Now())}).mustOK(t) // MFA_DISABLED

	// Refresh-token reuse: a rotated token presented after the grace window.
	p := s.login(t, u.email, u.password) // SIGN_IN, NEW_DEVICE (the test's own address)
	s.refresh(t, p.Refresh).mustOK(t)
	e.clock.Advance(time.Minute)
	if got, want := s.refresh(t, p.Refresh).reason(t), "REFRESH_TOKEN_REUSED"; got != want {
		t.Fatalf("reuse: %s, want %s", got, want)
	}
	cp := s.do(t, strong, `mutation { changePassword(currentPassword: "correct horse battery", newPassword: "a new good password") { accessToken } }`, nil).mustOK(t) // PASSWORD_CHANGED
	after := cp.str("changePassword.accessToken")
	s.do(t, after, `mutation { logout }`, nil).mustOK(t) // SESSION_REVOKED

	p = s.login(t, u.email, "a new good password") // SIGN_IN (a device seen before)
	kinds, newest := s.events(t, p.Access)
	want := []string{"SIGN_IN", "SESSION_REVOKED", "PASSWORD_CHANGED", "REFRESH_TOKEN_REUSED", "NEW_DEVICE", "SIGN_IN",
		"MFA_DISABLED", "RECOVERY_CODES_REGENERATED", "NEW_DEVICE", "SIGN_IN", "SIGN_IN_FAILED", "SIGN_IN", "MFA_ENABLED"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events=%v, want %v", kinds, want)
	}
	if got, want := newest["address"], "127.0.0.0/24"; got != want {
		t.Fatalf("address=%v, want %v", got, want)
	}
	if got, ok := newest["device"].(string); !ok || !strings.HasPrefix(got, "Go-http-client") {
		t.Fatalf("device=%v, want the User-Agent", newest["device"])
	}

	// The addresses are prefixes, the failed sign-in is there with its own.
	r = s.do(t, p.Access, eventsQuery, map[string]any{"first": 100}).mustOK(t)
	var addrs []string
	for _, e := range r.get("mySecurityEvents.edges").([]any) {
		n := e.(map[string]any)["node"].(map[string]any)
		if a, ok := n["address"].(string); ok {
			addrs = append(addrs, a)
		}
	}
	for _, a := range []string{"203.0.113.0/24", "198.51.100.0/24"} {
		if !slices.Contains(addrs, a) {
			t.Errorf("addresses %v lack %s", addrs, a)
		}
	}

	// Another user sees none of them.
	if kinds, _ := s.events(t, other.Access); len(kinds) != 0 {
		t.Fatalf("another user's trail: %v, want empty", kinds)
	}
	// Pages, newest first.
	first := s.do(t, p.Access, eventsQuery, map[string]any{"first": 2}).mustOK(t)
	if got, want := int(first.get("mySecurityEvents.totalCount").(float64)), len(want); got != want {
		t.Fatalf("totalCount=%d, want %d", got, want)
	}
	next := s.do(t, p.Access, eventsQuery, map[string]any{"first": 2, "after": first.str("mySecurityEvents.pageInfo.endCursor")}).mustOK(t)
	if got := len(next.get("mySecurityEvents.edges").([]any)); got != 2 {
		t.Fatalf("second page: %d edges, want 2", got)
	}
	// A cursor of another list is refused, naming the argument.
	bad := s.do(t, p.Access, eventsQuery, map[string]any{"first": 2, "after": "not a cursor"})
	if got, want := bad.code(t), "BAD_USER_INPUT"; got != want {
		t.Fatalf("bad cursor: %s, want %s", got, want)
	}

	// Mails: MFA on and off, two new devices, the password changed (sent,
	// or waiting in the outbox).
	if got, want := strings.Join(s.mails(t, u.email), ","), "mfa-changed,mfa-changed,new-device,new-device,password-changed,verify-email"; got != want {
		t.Fatalf("mails=%s, want %s", got, want)
	}
}
