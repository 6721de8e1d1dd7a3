package main

import (
	"net/http"
	"testing"
)

// A browser still holding the refresh cookie of the previous name stays
// signed in: the old cookie is read (under the same X-Auth-Client guard)
// and deleted as the new one is set.
func TestLegacyRefreshCookie(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	old := func() *http.Cookie {
		return &http.Cookie{Name: "__Secure-authql-rt", Value: s.login(t, "ann@example.com", "plum-tree-42").Refresh}
	}
	const refreshQ = `mutation { refresh { accessToken refreshToken } }`

	// Without the header, the old cookie is ignored like the new one.
	if got, want := s.as(t, caller{cookies: []*http.Cookie{old()}}, refreshQ, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("old cookie without the header: code=%q, want %q", got, want)
	}
	r := s.as(t, caller{web: true, cookies: []*http.Cookie{old()}}, refreshQ, nil).mustOK(t)
	fresh, dropped := r.cookie("__Host-authql-rt"), r.cookie("__Secure-authql-rt")
	if fresh == nil || fresh.Value == "" || fresh.Path != "/" {
		t.Fatalf("new refresh cookie: %+v", fresh)
	}
	if dropped == nil || dropped.MaxAge >= 0 || dropped.Path != "/query" {
		t.Errorf("old cookie not deleted at its own path: %+v", dropped)
	}
	s.as(t, caller{web: true, cookies: []*http.Cookie{fresh}}, refreshQ, nil).mustOK(t)

	// A browser sending only the new cookie is not sent deletions it does
	// not need; logout with the old one deletes both.
	if c := s.as(t, caller{web: true, cookies: []*http.Cookie{fresh}}, refreshQ, nil).cookie("__Secure-authql-rt"); c != nil {
		t.Errorf("old cookie deleted though not sent: %+v", c)
	}
	access := s.as(t, caller{web: true, cookies: []*http.Cookie{old()}}, refreshQ, nil).mustOK(t).str("refresh.accessToken")
	lr := s.as(t, caller{web: true, token: access, cookies: []*http.Cookie{old()}}, `mutation { logout }`, nil).mustOK(t)
	for _, name := range []string{"__Host-authql-rt", "__Secure-authql-rt"} {
		if c := lr.cookie(name); c == nil || c.MaxAge >= 0 {
			t.Errorf("logout: %s not deleted: %+v", name, c)
		}
	}
}
