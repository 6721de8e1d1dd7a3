package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
)

// refreshAs refreshes as a particular client (user agent and, through a
// trusted proxy, address).
func (s *testServer) refreshAs(t *testing.T, refresh, userAgent, ip string) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($t: String!) { refresh(refreshToken: $t) { ` + authFields + ` } }`,
		"variables": map[string]any{"t": refresh},
	})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Forwarded-For", ip)
	return s.send(t, req)
}

// The grace window answers only the client that rotated: another tab of
// the same browser gets the same pair, but someone else presenting the
// parent within the window is a thief, and the session ends.
func TestGraceWindowIsBoundToTheClient(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	s := e.start(t)
	const browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	tok := s.register(t, "fox@example.com", "plum-tree-42", "Fox")
	first := s.refreshAs(t, tok.Refresh, browser, "198.51.100.7").mustOK(t)
	// Another tab: same browser, same network.
	again := s.refreshAs(t, tok.Refresh, browser, "198.51.100.7").mustOK(t)
	if got, want := again.str("refresh.refreshToken"), first.str("refresh.refreshToken"); got != want {
		t.Errorf("the same client within the window got another pair")
	}
	// Someone else, within the window.
	r := s.refreshAs(t, tok.Refresh, "curl/8.5.0", "203.0.113.9")
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("another client within the window: code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Extensions["reason"], "REFRESH_TOKEN_REUSED"; got != want {
		t.Errorf("reason=%v, want %v", got, want)
	}
	if got, want := s.do(t, first.str("refresh.accessToken"), `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("the session lives on after a stranger replayed its token: code=%q, want %q", got, want)
	}
}

// Refreshing does not grow a session's Redis memory without bound: a used
// token shrinks to a 128-bit entry in one capped set, and the pair kept for
// the grace window expires with it. After 500 rotations the session is
// three keys (the session, the user's index, the used set of 128 entries).
func TestRefreshChurnStaysBounded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_REFRESH_REUSE_GRACE"] = "200ms"
	e.env["APP_RATE_REFRESH_SESSION"] = "1000/1h"
	s := e.start(t)
	tok := s.register(t, "gil@example.com", "plum-tree-42", "Gil")
	rt := tok.Refresh
	const rotations = 500
	for i := range rotations {
		r := s.refresh(t, rt)
		if len(r.Errors) > 0 {
			t.Fatalf("rotation %d: %+v", i, r.Errors)
		}
		rt = r.str("refresh.refreshToken")
		e.clock.Advance(time.Second) // within the idle timeout, past nothing else
	}
	if e.redis.Mini != nil {
		e.redis.Mini.FastForward(time.Second)
	} else {
		// The grace pairs expire by their own TTL, in Redis.
		waitUntil(t, "rid of the grace pairs", func() bool {
			return len(cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"grace:{"+tok.UserID+"}*")) == 0
		})
	}
	var keys []string
	for _, kind := range []string{"session", "sessions", "used", "grace", "refresh"} {
		keys = append(keys, cachetest.Keys(t, e.redis.Client, e.redis.Prefix+kind+":{"+tok.UserID+"}*")...)
	}
	if len(keys) != 3 {
		t.Errorf("%d keys for one session after %d rotations, want 3: %v", len(keys), rotations, keys)
	}
	var bytes int64
	for _, k := range keys {
		if k == e.redis.Prefix+"used:{"+tok.UserID+"}:"+sid(t, tok.Access) {
			if n := e.redis.Client.ZCard(t.Context(), k).Val(); n != 128 {
				t.Errorf("%d used tokens remembered, want 128", n)
			}
		}
		if n, err := e.redis.Client.MemoryUsage(t.Context(), k).Result(); err == nil {
			bytes += n
		}
	}
	if bytes > 0 {
		t.Logf("Redis memory of one session after %d rotations: %d bytes (MEMORY USAGE over its keys)", rotations, bytes)
	}
	s.refresh(t, rt).mustOK(t)
}

// Sessions per user are capped: signing in once more ends the oldest, on
// every instance.
func TestSessionsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_MAX_SESSIONS_PER_USER"] = "3"
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	oldest := a.register(t, "hal@example.com", "plum-tree-42", "Hal")
	var latest tokens
	for range 3 {
		e.clock.Advance(time.Millisecond)
		latest = a.login(t, "hal@example.com", "plum-tree-42")
	}
	if got, want := b.do(t, oldest.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("the oldest session beyond the cap: code=%q, want %q", got, want)
	}
	r := b.do(t, latest.Access, `{ mySessions { id } }`, nil).mustOK(t)
	if got, _ := r.get("mySessions").([]any); len(got) != 3 {
		t.Errorf("%d sessions, want 3", len(got))
	}
}
