package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authql/authql/cache/cachetest"
)

func TestAuthFlow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)

	reg := s.do(t, "", `mutation { register(input: {email: "  Ann@Example.COM ", password: "correct horse", name: " Ann "}) { `+authFields+` } }`, nil).mustOK(t)
	if got, want := reg.str("register.user.email"), "ann@example.com"; got != want {
		t.Errorf("registered email=%q, want %q (trimmed, lower-cased)", got, want)
	}
	if got, want := reg.str("register.user.name"), "Ann"; got != want {
		t.Errorf("name=%q, want %q", got, want)
	}
	if got, want := reg.str("register.tokenType"), "Bearer"; got != want {
		t.Errorf("tokenType=%q, want %q", got, want)
	}
	if got, want := reg.get("register.expiresIn"), float64(15*60); got != want {
		t.Errorf("expiresIn=%v, want %v", got, want)
	}
	if got, want := reg.str("register.user.role"), "USER"; got != want {
		t.Errorf("role=%q, want %q", got, want)
	}

	// Login is case-insensitive on the e-mail and starts a second session.
	tok := s.login(t, "ANN@example.com", "correct horse")
	me := s.do(t, tok.Access, `{ me { id email name } }`, nil).mustOK(t)
	if got, want := me.str("me.id"), reg.str("register.user.id"); got != want {
		t.Errorf("me.id=%q, want %q", got, want)
	}

	upd := s.do(t, tok.Access, `mutation { updateMe(input: {name: "Ann B."}) { name } }`, nil).mustOK(t)
	if got, want := upd.str("updateMe.name"), "Ann B."; got != want {
		t.Errorf("updateMe.name=%q, want %q", got, want)
	}

	// Refresh rotates: the new pair works, the old refresh token is retired.
	e.clock.Advance(time.Minute)
	ref := s.refresh(t, tok.Refresh).mustOK(t)
	newAccess, newRefresh := ref.str("refresh.accessToken"), ref.str("refresh.refreshToken")
	if newRefresh == tok.Refresh || newAccess == tok.Access {
		t.Fatal("refresh returned the same tokens")
	}
	if got, want := ref.str("refresh.user.email"), "ann@example.com"; got != want {
		t.Errorf("refresh.user.email=%q, want %q", got, want)
	}
	s.do(t, newAccess, `{ me { id } }`, nil).mustOK(t)
	e.clock.Advance(time.Minute) // past the reuse grace window
	if got, want := s.refresh(t, tok.Refresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("rotated-away refresh token: code=%q, want %q", got, want)
	}

	// Logout refuses the access token at once.
	reg2 := s.login(t, "ann@example.com", "correct horse")
	s.do(t, reg2.Access, `mutation { logout }`, nil).mustOK(t)
	r := s.do(t, reg2.Access, `{ me { id } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("after logout: code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Extensions["reason"], "SESSION_ENDED"; got != want {
		t.Errorf("after logout: reason=%v, want %v", got, want)
	}
	// ... and its refresh token.
	if got, want := s.refresh(t, reg2.Refresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("refresh after logout: code=%q, want %q", got, want)
	}
}

// A logout served by one instance is honoured by another: at once when B
// checks Redis per request (before its revocation set has synced), and
// within 100 ms (in practice well under a millisecond: the time Redis takes
// to deliver one pub/sub message) when it authenticates from memory. See
// TestRevocationReachesOtherInstanceFromMemory for the measured delay.
func TestLogoutReachesOtherInstance(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	tok := a.register(t, "bob@example.com", "plum-tree-42", "Bob")
	b.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	a.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
	refusedWithin(t, b, tok.Access, 100*time.Millisecond)
	if got, want := b.refresh(t, tok.Refresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("instance B refresh after logout on A: code=%q, want %q", got, want)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	s.register(t, "carol@example.com", "plum-tree-42", "Carol")
	const q = `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }`
	wrongPw := s.do(t, "", q, map[string]any{"e": "carol@example.com", "p": "wrong-password"})
	unknown := s.do(t, "", q, map[string]any{"e": "nobody@example.com", "p": "wrong-password"})
	for name, r := range map[string]gqlResponse{"wrong password": wrongPw, "unknown e-mail": unknown} {
		if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("%s: code=%q, want %q", name, got, want)
		}
	}
	if wrongPw.Errors[0].Message != unknown.Errors[0].Message {
		t.Errorf("messages differ: %q vs %q", wrongPw.Errors[0].Message, unknown.Errors[0].Message)
	}
	if wrongPw.Errors[0].Extensions["reason"] != unknown.Errors[0].Extensions["reason"] {
		t.Errorf("reasons differ: %v vs %v", wrongPw.Errors[0].Extensions, unknown.Errors[0].Extensions)
	}
}

// Every kind of bad access token is refused with UNAUTHENTICATED.
func TestBadAccessTokens(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "dave@example.com", "plum-tree-42", "Dave")
	parts := strings.Split(tok.Access, ".")
	header, claims := decodeSegment(t, parts[0]), decodeSegment(t, parts[1])

	sign := func(method jwt.SigningMethod, key any, hdr map[string]any, cl map[string]any) string {
		tk := jwt.NewWithClaims(method, jwt.MapClaims(cl))
		for k, v := range hdr {
			tk.Header[k] = v
		}
		out, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tamperedClaims := with(claims, "sub", "US00000000000000000000000000")
	cases := map[string]string{
		"malformed":            "not-a-jwt",
		"empty":                "",
		"tampered payload":     parts[0] + "." + encodeSegment(t, tamperedClaims) + "." + parts[2],
		"wrong secret":         sign(jwt.SigningMethodHS256, []byte("another-secret-of-thirty-two-bytes!!"), header, claims),
		"alg none":             encodeSegment(t, with(header, "alg", "none")) + "." + parts[1] + ".",
		"alg none signed":      sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, header, claims),
		"other alg, same kid":  sign(jwt.SigningMethodHS512, []byte(testSecret), header, claims),
		"ed25519 with our kid": sign(jwt.SigningMethodEdDSA, edKey, header, claims),
		"no kid":               sign(jwt.SigningMethodHS256, []byte(testSecret), with(header, "kid", nil), claims),
		"no typ":               sign(jwt.SigningMethodHS256, []byte(testSecret), with(header, "typ", nil), claims),
		"jku header":           sign(jwt.SigningMethodHS256, []byte(testSecret), with(header, "jku", "https://evil.example/jwks"), claims),
		"crit header":          sign(jwt.SigningMethodHS256, []byte(testSecret), with(header, "crit", []string{"exp"}), claims),
		"no exp":               sign(jwt.SigningMethodHS256, []byte(testSecret), header, with(claims, "exp", nil)),
		"wrong issuer":         sign(jwt.SigningMethodHS256, []byte(testSecret), header, with(claims, "iss", "someone-else")),
		"wrong audience":       sign(jwt.SigningMethodHS256, []byte(testSecret), header, with(claims, "aud", "someone-else")),
		"refresh token":        tok.Refresh,
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			r := s.do(t, token, `{ me { id } }`, nil)
			if token == "" {
				// An empty bearer is "no token"; still refused.
				r = s.do(t, "", `{ me { id } }`, nil)
			}
			if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
				t.Errorf("code=%q, want %q", got, want)
			}
		})
	}
	// An expired token says so, so the client knows to refresh.
	e.clock.Advance(16 * time.Minute)
	r := s.do(t, tok.Access, `{ me { id } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("expired: code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Extensions["reason"], "TOKEN_EXPIRED"; got != want {
		t.Errorf("expired: reason=%v, want %v", got, want)
	}
	// Public operations still work with a bad header.
	s.do(t, "garbage", `mutation { login(input: {email: "dave@example.com", password: "plum-tree-42"}) { accessToken } }`, nil).mustOK(t)
}

func TestBadRefreshTokens(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "erin@example.com", "plum-tree-42", "Erin")
	forged := tok.Refresh[:len(tok.Refresh)-4] + "AAAA"
	for name, rt := range map[string]string{
		"empty":        "",
		"garbage":      "garbage",
		"access token": tok.Access,
		"forged":       forged,
		"huge":         strings.Repeat("a", 10000),
	} {
		t.Run(name, func(t *testing.T) {
			if got, want := s.refresh(t, rt).code(t), "UNAUTHENTICATED"; got != want {
				t.Errorf("code=%q, want %q", got, want)
			}
		})
	}
	// None of those harmed the real session.
	s.refresh(t, tok.Refresh).mustOK(t)
}

// Tabs refreshing at the same moment with the same token all get the same
// new pair (RFC 9700 grace), never two different live children.
func TestConcurrentRefreshSamePair(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "fay@example.com", "plum-tree-42", "Fay")
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pairs   = map[string]int{}
		errored int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.refresh(t, tok.Refresh)
			mu.Lock()
			defer mu.Unlock()
			if len(r.Errors) > 0 {
				errored++
				return
			}
			pairs[r.str("refresh.accessToken")+" "+r.str("refresh.refreshToken")]++
		}()
	}
	wg.Wait()
	if len(pairs) != 1 {
		t.Fatalf("got %d distinct pairs (and %d errors), want exactly 1", len(pairs), errored)
	}
	var child string
	for p := range pairs {
		child = strings.Split(p, " ")[1]
	}
	// Redis holds exactly one live refresh token for the session, the
	// child: the session's current token. The parent is remembered as used.
	sess := cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"session:{"+tok.UserID+"}:*")
	if len(sess) != 1 {
		t.Fatalf("%d sessions in Redis, want 1", len(sess))
	}
	if got, want := e.redis.Client.HGet(t.Context(), sess[0], "rt").Val(), sha256Hex(child); got != want {
		t.Errorf("the session's live refresh token is %q, want the child's %q", got, want)
	}
	used := cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"used:{"+tok.UserID+"}:*")
	if len(used) != 1 {
		t.Fatalf("%d used-token sets, want 1", len(used))
	}
	if n := e.redis.Client.ZCard(t.Context(), used[0]).Val(); n != 1 {
		t.Errorf("%d tokens remembered as used, want 1 (the parent)", n)
	}
	if err := e.redis.Client.ZScore(t.Context(), used[0], sha256Hex(tok.Refresh)[:32]).Err(); err != nil {
		t.Errorf("the parent is not remembered as used: %v", err)
	}
	// The one child works; the session is alive.
	s.refresh(t, child).mustOK(t)
}

// An attacker who copied a refresh token refreshes first; when the victim
// later presents the same (now rotated) token, the whole session ends: the
// attacker's fresh tokens die too.
func TestStolenRefreshTokenEndsSession(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	victim := s.register(t, "gus@example.com", "plum-tree-42", "Gus")
	attacker := s.refresh(t, victim.Refresh).mustOK(t)
	attackerAccess, attackerRefresh := attacker.str("refresh.accessToken"), attacker.str("refresh.refreshToken")
	e.clock.Advance(11 * time.Second) // beyond the grace window
	r := s.refresh(t, victim.Refresh)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("victim's reuse: code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Extensions["reason"], "REFRESH_TOKEN_REUSED"; got != want {
		t.Errorf("reason=%v, want %v", got, want)
	}
	if got, want := s.do(t, attackerAccess, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("attacker's access token: code=%q, want %q", got, want)
	}
	if got, want := s.refresh(t, attackerRefresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("attacker's refresh token: code=%q, want %q", got, want)
	}
	if got, want := s.do(t, victim.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("victim's old access token: code=%q, want %q", got, want)
	}
	if !strings.Contains(s.logs.String(), "reuse_detected") {
		t.Errorf("no reuse_detected auth event in the log:\n%s", s.logs)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "hal@example.com", "plum-tree-42", "Hal")

	// Idle for 30 minutes: the refresh token no longer works.
	e.clock.Advance(31 * time.Minute)
	if got, want := s.refresh(t, tok.Refresh).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("after idle timeout: code=%q, want %q", got, want)
	}

	// Refreshing every 20 minutes keeps a session for 7 days, no longer.
	tok = s.login(t, "hal@example.com", "plum-tree-42")
	rt := tok.Refresh
	for elapsed := time.Duration(0); elapsed < 7*24*time.Hour-20*time.Minute; elapsed += 20 * time.Minute {
		e.clock.Advance(20 * time.Minute)
		rt = s.refresh(t, rt).mustOK(t).str("refresh.refreshToken")
	}
	e.clock.Advance(20 * time.Minute)
	if got, want := s.refresh(t, rt).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("after 7 days: code=%q, want %q", got, want)
	}
}

func decodeSegment(t *testing.T, s string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeSegment(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// refusedWithin fails unless s refuses token (UNAUTHENTICATED) within d.
func refusedWithin(t *testing.T, s *testServer, token string, d time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		r := s.do(t, token, `{ me { id } }`, nil)
		if len(r.Errors) > 0 {
			if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
				t.Fatalf("code=%q, want %q", got, want)
			}
			return
		}
		if time.Since(start) > d {
			t.Fatalf("token still accepted %v after its revocation", d)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
