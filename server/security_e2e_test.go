package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const loginQ = `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }`

func loginVars(email, pw string) map[string]any { return map[string]any{"e": email, "p": pw} }

// With the default limits, password guessing against one account is
// throttled within 10 tries, whichever addresses it comes from.
func TestLoginBruteForceThrottled(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	var limitedAt int
	for i := 1; i <= 11; i++ {
		r := s.do(t, "", loginQ, loginVars("ann@example.com", fmt.Sprintf("guess-%d-xyz", i)))
		if r.code(t) == "RATE_LIMITED" {
			limitedAt = i
			if ra, _ := r.Errors[0].Extensions["retryAfter"].(float64); ra < 1 {
				t.Errorf("retryAfter=%v, want ≥ 1 second", r.Errors[0].Extensions["retryAfter"])
			}
			if r.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After header")
			}
			break
		}
	}
	if limitedAt == 0 || limitedAt > 11 {
		t.Fatalf("never rate limited in 11 tries")
	}
	// Now even the right password is refused until the window passes.
	if got, want := s.do(t, "", loginQ, loginVars("ann@example.com", "plum-tree-42")).code(t), "RATE_LIMITED"; got != want {
		t.Errorf("right password while limited: code=%q, want %q", got, want)
	}
	// Another account is not affected.
	s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	s.login(t, "bob@example.com", "plum-tree-42")
}

func TestRegisterLimitedPerAddress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_REGISTER_IP"] = "2/1h"
	s := e.start(t)
	s.register(t, "a@example.com", "plum-tree-42", "A")
	s.register(t, "b@example.com", "plum-tree-42", "B")
	r := s.do(t, "", `mutation { register(input: {email: "c@example.com", password: "plum-tree-42", name: "C"}) { accessToken } }`, nil)
	if got, want := r.code(t), "RATE_LIMITED"; got != want {
		t.Errorf("third sign-up: code=%q, want %q", got, want)
	}
	if got := s.count(t, "users"); got != 2 {
		t.Errorf("users=%d, want 2", got)
	}
}

// The API budget is charged by complexity; a refused request is a 429 with
// Retry-After, and refresh and logout still work.
func TestAPIRateLimitByComplexity(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_API"] = "60/1h"
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	// posts(first: 10) { edges { node { id title } } }: 1 + 10 × (1 + 1 + 2) = 41.
	const heavy = `{ posts(first: 10) { edges { node { id title } } } }`
	s.do(t, ann.Access, heavy, nil).mustOK(t)
	r := s.do(t, ann.Access, heavy, nil)
	if got, want := r.Status, http.StatusTooManyRequests; got != want {
		t.Errorf("status=%d, want %d", got, want)
	}
	if got, want := r.code(t), "RATE_LIMITED"; got != want {
		t.Errorf("code=%q, want %q", got, want)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After=%q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
	}
	if r.Data != nil {
		t.Errorf("refused request has data: %v", r.Data)
	}
	// A cheap query still fits the remaining budget.
	s.do(t, ann.Access, `{ me { id } }`, nil).mustOK(t)
	// Bob has his own budget.
	s.do(t, bob.Access, heavy, nil).mustOK(t)
	// Refresh and logout are never blocked by the API limit.
	for range 3 {
		s.do(t, ann.Access, heavy, nil)
	}
	ref := s.refresh(t, ann.Refresh).mustOK(t)
	s.do(t, ref.str("refresh.accessToken"), `mutation { logout }`, nil).mustOK(t)
}

// X-Forwarded-For is believed only from a trusted proxy.
func TestClientAddressAndTrustedProxies(t *testing.T) {
	t.Parallel()
	spoofed := func(s *testServer, xff string) gqlResponse {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(
			`{"query":"mutation { login(input: {email: \"ann@example.com\", password: \"plum-tree-42\"}) { accessToken } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		return s.send(t, req)
	}
	t.Run("untrusted peer", func(t *testing.T) {
		e := newTestEnv(t)
		e.env["APP_RATE_LOGIN_IP"] = "2/1h"
		s := e.start(t)
		s.register(t, "ann@example.com", "plum-tree-42", "Ann")
		spoofed(s, "10.0.0.1").mustOK(t)
		spoofed(s, "10.0.0.2").mustOK(t)
		// A new X-Forwarded-For does not buy a new bucket.
		if got, want := spoofed(s, "10.0.0.3").code(t), "RATE_LIMITED"; got != want {
			t.Errorf("third login with a spoofed address: code=%q, want %q", got, want)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		e := newTestEnv(t)
		e.env["APP_RATE_LOGIN_IP"] = "2/1h"
		e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
		s := e.start(t)
		s.register(t, "ann@example.com", "plum-tree-42", "Ann")
		tok := spoofed(s, "203.0.113.9, 10.0.0.1").mustOK(t).str("login.accessToken")
		spoofed(s, "198.51.100.7").mustOK(t)
		spoofed(s, "198.51.100.8").mustOK(t)
		var current map[string]any
		for _, sess := range s.do(t, tok, sessionsQuery, nil).mustOK(t).get("mySessions").([]any) {
			if m := sess.(map[string]any); m["current"] == true {
				current = m
			}
		}
		if got, want := current["ip"], "10.0.0.1"; got != want {
			t.Errorf("session ip=%v, want the right-most untrusted hop %v", got, want)
		}
	})
}

func TestQueryLimits(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	// Refused before any resolver runs: this mutation would create a post.
	deep := `mutation { createPost(input: {title: "t", content: "c"}) { author { posts { edges { node { author { posts { edges { node { author { id } } } } } } } } } } }`
	r := s.do(t, tok.Access, deep, nil)
	if got, want := r.code(t), "GRAPHQL_VALIDATION_FAILED"; got != want {
		t.Errorf("deep: code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Extensions["limit"], "depth"; got != want {
		t.Errorf("deep: limit=%v, want %v", got, want)
	}
	if got := s.count(t, "posts"); got != 0 {
		t.Errorf("a refused mutation wrote %d posts", got)
	}

	// Depth through fragments counts too.
	frag := `query { ...A } fragment A on Query { me { ...B } } fragment B on User { posts { edges { node { author { ...C } } } } }
		fragment C on User { posts { edges { node { author { posts { edges { node { id } } } } } } } }`
	if got, want := s.do(t, tok.Access, frag, nil).Errors[0].Extensions["limit"], "depth"; got != want {
		t.Errorf("deep via fragments: limit=%v, want %v", got, want)
	}

	// A fragment bomb: 40 fragments, each spreading the previous twice,
	// would expand to 2^40 fields. It is refused (in linear time).
	var b strings.Builder
	b.WriteString("query { me { ...F40 } }\nfragment F0 on User { id }\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "fragment F%d on User { ...F%d name: name ...F%d }\n", i, i-1, i-1)
	}
	start := time.Now()
	r = s.do(t, tok.Access, b.String(), nil)
	if got, want := r.Errors[0].Extensions["limit"], "fields"; got != want {
		t.Errorf("fragment bomb: limit=%v, want %v (%v)", got, want, r.Errors)
	}
	t.Logf("fragment bomb of 40 levels refused in %v", time.Since(start))

	// Aliases count: 40 × (me 1 + posts (1 + 20 × 3)) = 2,480.
	b.Reset()
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, " a%d: me { posts(first: 20) { edges { node { id } } } }", i)
	}
	b.WriteString(" }")
	r = s.do(t, tok.Access, b.String(), nil)
	if got, want := r.code(t), "COMPLEXITY_LIMIT_EXCEEDED"; got != want {
		t.Errorf("40 aliases: code=%q, want %q", got, want)
	}

	// List sizes count: 100 users × 100 posts each.
	r = s.do(t, tok.Access, `{ posts(first: 100) { edges { node { author { posts(first: 100) { edges { node { id } } } } } } } }`, nil)
	if got, want := r.code(t), "COMPLEXITY_LIMIT_EXCEEDED"; got != want {
		t.Errorf("nested lists: code=%q, want %q", got, want)
	}

	// Page size anywhere, before anything runs.
	r = s.do(t, tok.Access, `query($n: Int) { me { posts(first: $n) { totalCount } } }`, map[string]any{"n": 1000})
	if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
		t.Errorf("nested page size: code=%q, want %q", got, want)
	}

	// Too many tokens.
	r = s.do(t, tok.Access, "{ me { "+strings.Repeat("id ", 12000)+"} }", nil) // 36 KB: under the byte limit
	if got, want := r.code(t), "GRAPHQL_PARSE_FAILED"; got != want {
		t.Errorf("token flood: code=%q, want %q", got, want)
	}
}

// productionEnv is a production configuration that can run in a test:
// everything explicit, TLS assumed to end at a trusted proxy.
func productionEnv(e *testEnv) {
	e.env["APP_ENV"] = "production"
	e.env["REDIS_URL"] = "redis://unused.invalid:6379" // the test injects its client
	e.env["APP_ENCRYPTION_KEY"] = strongSecret
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	// Mail is never delivered here (nothing listens); these tests sign up
	// and use the tokens at once.
	e.env["APP_SMTP_URL"] = "smtp://127.0.0.1:1?tls=none"
	e.env["APP_PUBLIC_URL"] = "https://app.example.com"
	e.env["APP_REQUIRE_VERIFIED_EMAIL"] = "false"
}

func TestProductionHardening(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	productionEnv(e)
	s := e.start(t)
	https := func(req *http.Request) *http.Request {
		req.Header.Set("X-Forwarded-Proto", "https")
		return req
	}
	post := func(q string, secure bool) gqlResponse {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":`+strconv.Quote(q)+`}`))
		req.Header.Set("Content-Type", "application/json")
		if secure {
			https(req)
		}
		return s.send(t, req)
	}
	// Plain HTTP is refused (POST) or redirected (GET); health stays open.
	if r := post(`{ __typename }`, false); r.Status != http.StatusForbidden || r.code(t) != "HTTPS_REQUIRED" {
		t.Errorf("plain POST: status=%d errors=%v", r.Status, r.Errors)
	}
	noRedirect := *s.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noRedirect.Get(s.URL + "/query?query=%7B__typename%7D")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(res.Header.Get("Location"), "https://") {
		t.Errorf("plain GET: status=%d Location=%q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, err := s.Client().Get(s.URL + "/readyz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("readyz over plain HTTP: %v %v", res, err)
	}
	r := post(`{ __typename }`, true).mustOK(t)
	if !strings.HasPrefix(r.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS: %q", r.Header.Get("Strict-Transport-Security"))
	}
	// No introspection, no suggestions, no playground.
	if r := post(`{ __schema { types { name } } }`, true); len(r.Errors) == 0 {
		t.Error("introspection allowed in production")
	}
	if r := post(`{ mee { id } }`, true); len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Errorf("suggestions in production: %v", r.Errors)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/", nil)
	res, err = s.Client().Do(https(req))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("playground in production: status=%d", res.StatusCode)
	}
}

// Stored content is sanitised on write; nothing comes back executable.
func TestStoredXSS(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	payloads := []string{
		`<script>alert(1)</script>hello`,
		`<img src=x onerror="alert(1)">`,
		`<a href="javascript:alert(1)">click</a>`,
		`<a href="  JaVaScRiPt:alert(1)">click</a>`,
		`<svg onload=alert(1)><circle/></svg>svg`,
		`<iframe src="https://evil.example"></iframe>frame`,
		`<p style="background:url(javascript:alert(1))" onclick="x()">p</p>`,
		`<a href="data:text/html,<script>alert(1)</script>">d</a>`,
		`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>m`,
	}
	dangerous := []string{"<script", "onerror", "onload", "onclick", "javascript:", "<svg", "<iframe", "<style", "data:text"}
	for _, p := range payloads {
		r := s.do(t, tok.Access, `mutation($c: String!) { createPost(input: {title: "<script>alert(1)</script>", content: $c}) { id title content } }`,
			map[string]any{"c": p})
		if len(r.Errors) > 0 {
			// Sanitising left nothing: refused as empty content, nothing stored.
			if r.code(t) != "BAD_USER_INPUT" {
				t.Errorf("%q: %v", p, r.Errors)
			}
			continue
		}
		content := strings.ToLower(r.str("createPost.content"))
		for _, d := range dangerous {
			if strings.Contains(content, d) {
				t.Errorf("%q came back as %q, containing %q", p, content, d)
			}
		}
		// Titles are plain text, returned as given (JSON-escaped).
		if got, want := r.str("createPost.title"), "<script>alert(1)</script>"; got != want {
			t.Errorf("title=%q, want %q", got, want)
		}
	}
	// Safe markup survives.
	r := s.do(t, tok.Access, `mutation($c: String!) { createPost(input: {title: "ok", content: $c}) { content } }`,
		map[string]any{"c": `<p><em>hi</em> <a href="https://example.com/x">link</a></p><ul><li><code>x</code></li></ul>`}).mustOK(t)
	for _, want := range []string{"<em>hi</em>", `href="https://example.com/x"`, `rel="nofollow"`, "<li><code>x</code></li>"} {
		if !strings.Contains(r.str("createPost.content"), want) {
			t.Errorf("safe markup lost %q: %s", want, r.str("createPost.content"))
		}
	}
	// The raw response never carries a literal '<': it is JSON, escaped.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ posts { edges { node { title content } } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw strings.Builder
	_, _ = fmt.Fprint(&raw, readAll(t, res))
	if strings.Contains(raw.String(), "<") {
		t.Errorf("raw response contains '<': %s", raw.String())
	}
	if got, want := res.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type=%q, want %q", got, want)
	}
}

func TestWebClientCookie(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	web := func(q string, cookie *http.Cookie, header bool) (gqlResponse, *http.Cookie) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":`+strconv.Quote(q)+`}`))
		req.Header.Set("Content-Type", "application/json")
		if header {
			req.Header.Set("X-Auth-Client", "web")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		r := s.send(t, req)
		var got *http.Cookie
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "__Host-authql-rt" {
				got = c
			}
		}
		return r, got
	}
	r, c := web(`mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken refreshToken } }`, nil, true)
	r.mustOK(t)
	if c == nil {
		t.Fatal("no refresh cookie")
	}
	if r.str("login.refreshToken") != "" {
		t.Error("web login put the refresh token in the payload too")
	}
	// __Host-: Secure, Path=/ and no Domain, or browsers refuse it.
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie attributes: %+v", c)
	}
	// The cookie alone (no custom header: a cross-site form) is ignored.
	if got, want := func() string { r, _ := web(`mutation { refresh { accessToken } }`, c, false); return r.code(t) }(), "UNAUTHENTICATED"; got != want {
		t.Errorf("cookie without header: code=%q, want %q", got, want)
	}
	r, c2 := web(`mutation { refresh { accessToken refreshToken } }`, c, true)
	r.mustOK(t)
	if c2 == nil || c2.Value == c.Value {
		t.Fatal("refresh did not rotate the cookie")
	}
	access := r.str("refresh.accessToken")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"mutation { logout }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Client", "web")
	req.Header.Set("Authorization", "Bearer "+access)
	lr := s.send(t, req).mustOK(t)
	cleared := false
	for _, ck := range (&http.Response{Header: lr.Header}).Cookies() {
		cleared = cleared || (ck.Name == "__Host-authql-rt" && ck.MaxAge < 0)
	}
	if !cleared {
		t.Error("logout did not clear the cookie")
	}
}

// Tokens can be signed with Ed25519; other services verify them with the
// public keys served at /.well-known/jwks.json.
func TestEd25519AndJWKS(t *testing.T) {
	t.Parallel()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	e := newTestEnv(t)
	e.env["APP_JWT_ED25519_KEY"] = base64.StdEncoding.EncodeToString(seed)
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	res, err := s.Client().Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if !strings.Contains(body, `"kty":"OKP"`) || !strings.Contains(body, `"alg":"EdDSA"`) {
		t.Fatalf("jwks: %s", body)
	}
	if strings.Contains(body, "hs256") {
		t.Errorf("jwks publishes an HMAC key: %s", body)
	}
	// An outside verifier with only the public key accepts the token.
	pub := ed25519.NewKeyFromSeed(seed).Public()
	parsed, err := jwt.Parse(tok.Access, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("authql"), jwt.WithIssuer("authql"))
	if err != nil || !parsed.Valid {
		t.Fatalf("outside verification: %v", err)
	}

	// Rotation: a new key signs, the old one still verifies and is
	// published, so tokens minted before the rotation keep working.
	e.env["APP_JWT_ED25519_VERIFY_KEYS"] = base64.StdEncoding.EncodeToString(pub.(ed25519.PublicKey))
	newSeed := make([]byte, ed25519.SeedSize)
	newSeed[0] = 42
	e.env["APP_JWT_ED25519_KEY"] = base64.StdEncoding.EncodeToString(newSeed)
	rotated := e.start(t)
	rotated.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	res, err = rotated.Client().Get(rotated.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(readAll(t, res), `"kty":"OKP"`); got != 2 {
		t.Errorf("jwks after rotation has %d keys, want 2", got)
	}
	// Once the old key is dropped, its tokens are refused.
	delete(e.env, "APP_JWT_ED25519_VERIFY_KEYS")
	dropped := e.start(t)
	if got, want := dropped.do(t, tok.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("token of a dropped key: code=%q, want %q", got, want)
	}
}

func TestClockSkewLeeway(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	e.clock.Advance(15*time.Minute + 20*time.Second) // expired, within the 30 s leeway
	s.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	e.clock.Advance(20 * time.Second)
	if got, want := s.do(t, tok.Access, `{ me { id } }`, nil).Errors[0].Extensions["reason"], "TOKEN_EXPIRED"; got != want {
		t.Errorf("beyond leeway: reason=%v, want %v", got, want)
	}
}

func TestCommonPasswordsRefused(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	for _, pw := range []string{"password123", "PASSWORD1", "iloveyou123", "qwertyuiop"} {
		r := s.do(t, "", `mutation($p: String!) { register(input: {email: "x@example.com", password: $p, name: "X"}) { accessToken } }`,
			map[string]any{"p": pw})
		if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
			t.Errorf("%q: code=%q, want %q", pw, got, want)
		}
	}
	// No composition rules: a long phrase of lower-case words is fine.
	s.register(t, "x@example.com", "correct horse battery staple", "X")
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
