package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const sessionsQuery = `{ mySessions { id createdAt lastUsedAt userAgent ip current } }`

func sessionIDs(t *testing.T, r gqlResponse) (ids []string, current string) {
	t.Helper()
	for _, s := range r.mustOK(t).get("mySessions").([]any) {
		m := s.(map[string]any)
		ids = append(ids, m["id"].(string))
		if m["current"] == true {
			current = m["id"].(string)
		}
	}
	return ids, current
}

func TestPerDeviceSessions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	// A second between logins: sessions list in login order, and the order
	// of logins in the same millisecond is not defined.
	laptop := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	e.clock.Advance(time.Second)
	phone := s.login(t, "ann@example.com", "plum-tree-42")
	e.clock.Advance(time.Second)
	tablet := s.login(t, "ann@example.com", "plum-tree-42")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")

	r := s.do(t, phone.Access, sessionsQuery, nil)
	ids, current := sessionIDs(t, r)
	if len(ids) != 3 {
		t.Fatalf("ann has %d sessions, want 3", len(ids))
	}
	first := r.get("mySessions").([]any)[0].(map[string]any)
	if first["ip"] != "127.0.0.1" || !strings.HasPrefix(first["userAgent"].(string), "Go-http-client") {
		t.Errorf("session metadata: ip=%v userAgent=%v", first["ip"], first["userAgent"])
	}
	if current != ids[1] {
		t.Errorf("current=%s, want the phone's session %s (second login)", current, ids[1])
	}
	// Bob sees only his own, and cannot revoke Ann's.
	bobIDs, _ := sessionIDs(t, s.do(t, bob.Access, sessionsQuery, nil))
	if len(bobIDs) != 1 {
		t.Errorf("bob has %d sessions, want 1", len(bobIDs))
	}
	rv := s.do(t, bob.Access, `mutation($id: ID!) { revokeSession(id: $id) }`, map[string]any{"id": ids[0]}).mustOK(t)
	if rv.get("revokeSession") != false {
		t.Errorf("bob revoking ann's session returned %v", rv.get("revokeSession"))
	}
	s.do(t, laptop.Access, `{ me { id } }`, nil).mustOK(t)

	// Ann revokes the lost laptop from her phone.
	rv = s.do(t, phone.Access, `mutation($id: ID!) { revokeSession(id: $id) }`, map[string]any{"id": ids[0]}).mustOK(t)
	if rv.get("revokeSession") != true {
		t.Errorf("revokeSession=%v, want true", rv.get("revokeSession"))
	}
	if got, want := s.do(t, laptop.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("revoked laptop: code=%q, want %q", got, want)
	}
	if got, want := s.refresh(t, laptop.Refresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("revoked laptop refresh: code=%q, want %q", got, want)
	}

	// Logout OTHERS keeps only the phone.
	s.do(t, phone.Access, `mutation { logout(scope: OTHERS) }`, nil).mustOK(t)
	if got, want := s.do(t, tablet.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("tablet after logout OTHERS: code=%q, want %q", got, want)
	}
	ids, _ = sessionIDs(t, s.do(t, phone.Access, sessionsQuery, nil))
	if len(ids) != 1 {
		t.Errorf("after logout OTHERS: %d sessions, want 1", len(ids))
	}
	// Logout ALL ends the phone too.
	another := s.login(t, "ann@example.com", "plum-tree-42")
	s.do(t, phone.Access, `mutation { logout(scope: ALL) }`, nil).mustOK(t)
	for name, tok := range map[string]string{"phone": phone.Access, "another": another.Access} {
		if got, want := s.do(t, tok, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("%s after logout ALL: code=%q, want %q", name, got, want)
		}
	}
	// Bob was never touched.
	s.do(t, bob.Access, `{ me { id } }`, nil).mustOK(t)
}

func TestSessionLastUsedIsRecorded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	createdAt := s.do(t, tok.Access, sessionsQuery, nil).mustOK(t).get("mySessions").([]any)[0].(map[string]any)["lastUsedAt"]

	// Use the session 10 minutes later; within a couple of seconds the
	// background flush records it (at most one write a minute per session).
	e.clock.Advance(10 * time.Minute)
	s.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.do(t, tok.Access, sessionsQuery, nil).mustOK(t).get("mySessions").([]any)[0].(map[string]any)["lastUsedAt"]
		if got != createdAt {
			want := e.clock.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
			if parsed, _ := time.Parse(time.RFC3339Nano, got.(string)); parsed.Format(time.RFC3339Nano) != want {
				t.Errorf("lastUsedAt=%v, want %v", got, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lastUsedAt never moved")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Requests keep the session alive: 25 minutes after the last request
	// (but 35 after the last refresh) the refresh token still works.
	e.clock.Advance(25 * time.Minute)
	s.refresh(t, tok.Refresh).mustOK(t)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	here := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	other := s.login(t, "ann@example.com", "plum-tree-42")
	const q = `mutation($cur: String!, $new: String!) { changePassword(currentPassword: $cur, newPassword: $new) { ` + authFields + ` } }`

	for _, tc := range []struct{ name, cur, new, field string }{
		{"wrong current", "wrong-password", "a new password", "currentPassword"},
		{"short new", "plum-tree-42", "short", "newPassword"},
	} {
		r := s.do(t, here.Access, q, map[string]any{"cur": tc.cur, "new": tc.new})
		if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
			t.Errorf("%s: code=%q, want %q", tc.name, got, want)
		}
		if got, want := r.Errors[0].Extensions["field"], tc.field; got != want {
			t.Errorf("%s: field=%v, want %v", tc.name, got, want)
		}
	}
	// Nothing changed: the other device still works, the old password too.
	s.do(t, other.Access, `{ me { id } }`, nil).mustOK(t)

	r := s.do(t, here.Access, q, map[string]any{"cur": "plum-tree-42", "new": "a much better passphrase"}).mustOK(t)
	newAccess, newRefresh := r.str("changePassword.accessToken"), r.str("changePassword.refreshToken")
	s.do(t, newAccess, `{ me { id } }`, nil).mustOK(t)
	for name, tok := range map[string]string{"other device": other.Access, "old access token": here.Access} {
		if got, want := s.do(t, tok, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("%s after password change: code=%q, want %q", name, got, want)
		}
	}
	for name, rt := range map[string]string{"other device": other.Refresh, "old refresh token": here.Refresh} {
		if got, want := s.refresh(t, rt).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("%s refresh after password change: code=%q, want %q", name, got, want)
		}
	}
	s.refresh(t, newRefresh).mustOK(t)
	ids, _ := sessionIDs(t, s.do(t, newAccess, sessionsQuery, nil))
	if len(ids) != 1 {
		t.Errorf("%d sessions after password change, want 1", len(ids))
	}
	// Only the new password logs in.
	r = s.do(t, "", `mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("old password: code=%q, want %q", got, want)
	}
	s.login(t, "ann@example.com", "a much better passphrase")
	_ = http.StatusOK
}
