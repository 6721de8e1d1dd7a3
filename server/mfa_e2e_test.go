package main

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// mfaUser is an account with two-factor sign-in on.
type mfaUser struct {
	tokens
	email    string
	password string
	secret   string
	recovery []string
}

const enrollQuery = `mutation { enrollTotp { secret uri qrCode } }`

// enableMFA registers an account and turns two-factor sign-in on, with
// the code of the current time step. The clock then moves to the next
// step, so the code is not the one a test uses next.
func enableMFA(t *testing.T, e *testEnv, s *testServer, email string) mfaUser {
	t.Helper()
	u := mfaUser{email: email, password: "correct horse battery"}
	u.tokens = s.register(t, email, u.password, "MFA")
	en := s.do(t, u.Access, enrollQuery, nil).mustOK(t)
	u.secret = en.str("enrollTotp.secret")
	if !strings.HasPrefix(en.str("enrollTotp.uri"), "otpauth://totp/") {
		t.Fatalf("uri=%q, want otpauth://totp/...", en.str("enrollTotp.uri"))
	}
	if !strings.HasPrefix(en.str("enrollTotp.qrCode"), "data:image/png;base64,") {
		t.Fatalf("qrCode=%.40q, want a PNG data URL", en.str("enrollTotp.qrCode"))
	}
	r := s.do(t, u.Access, `mutation($c: String!) { confirmTotp(code: $c) }`,
		map[string]any{"c": code(t, u.secret, e.clock.Now())}).mustOK(t)
	for _, c := range r.get("confirmTotp").([]any) {
		u.recovery = append(u.recovery, c.(string))
	}
	if got, want := len(u.recovery), 10; got != want {
		t.Fatalf("recovery codes=%d, want %d", got, want)
	}
	e.clock.Advance(30 * time.Second)
	return u
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// challenge logs in with the password and returns the MFA challenge.
func (s *testServer) challenge(t *testing.T, email, password string) string {
	t.Helper()
	r := s.do(t, "", `mutation($in: LoginInput!) { login(input: $in) { accessToken } }`,
		map[string]any{"in": map[string]any{"email": email, "password": password}})
	if got, want := r.code(t), "MFA_REQUIRED"; got != want {
		t.Fatalf("login code=%q, want %q (%+v)", got, want, r.Errors)
	}
	c, _ := r.Errors[0].Extensions["mfaChallenge"].(string)
	if c == "" || r.get("login") != nil {
		t.Fatalf("login answered %+v, want a challenge and no tokens", r)
	}
	return c
}

const verifyQuery = `mutation($ch: String!, $c: String!) { verifyMfa(challenge: $ch, code: $c) { ` + authFields + ` } }`

func (s *testServer) verifyMfa(t *testing.T, challenge, code string) gqlResponse {
	t.Helper()
	return s.do(t, "", verifyQuery, map[string]any{"ch": challenge, "c": code})
}

// reason is the extensions.reason of the only error.
func (r gqlResponse) reason(t *testing.T) string {
	t.Helper()
	r.code(t)
	s, _ := r.Errors[0].Extensions["reason"].(string)
	return s
}

// amr reads the amr claim of an access token.
func amr(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

// mails returns the templates of the mails written for the account at
// to, sorted: those sent (sent_mails) and those still waiting in the
// outbox.
func (s *testServer) mails(t *testing.T, to string) []string {
	t.Helper()
	var out []string
	rows, err := s.app.db.SQL.Query(`SELECT payload FROM outbox WHERE kind = 'mail'`)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		var m struct{ Template, To string }
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatal(err)
		}
		if m.To == to {
			out = append(out, m.Template)
		}
	}
	sent, err := s.app.db.SQL.Query(`SELECT template FROM sent_mails WHERE "to" = '` + to + `'`)
	if err != nil {
		t.Fatalf("read sent mails: %v", err)
	}
	defer sent.Close()
	for sent.Next() {
		var tpl string
		if err := sent.Scan(&tpl); err != nil {
			t.Fatal(err)
		}
		out = append(out, tpl)
	}
	slices.Sort(out)
	return out
}

func TestMFASignIn(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	u := enableMFA(t, e, s, "mfa@example.com")
	if got := amr(t, u.Access); strings.Join(got, ",") != "pwd" {
		t.Fatalf("amr of a password sign-in=%v, want [pwd]", got)
	}

	ch := s.challenge(t, u.email, u.password)
	// The code that turned two-factor on was of the step before: still in
	// the window, but used.
	used := code(t, u.secret, e.clock.Now().Add(-30*time.Second))
	if got, want := s.verifyMfa(t, ch, used).reason(t), "INVALID_MFA_CODE"; got != want {
		t.Fatalf("replayed code: reason=%q, want %q", got, want)
	}
	if got, want := s.verifyMfa(t, ch, "000000").reason(t), "INVALID_MFA_CODE"; got != want {
		t.Fatalf("wrong code: reason=%q, want %q", got, want)
	}
	now := code(t, u.secret, e.clock.Now())
	r := s.verifyMfa(t, ch, now).mustOK(t)
	access := r.str("verifyMfa.accessToken")
	if got := amr(t, access); strings.Join(got, ",") != "pwd,otp" {
		t.Fatalf("amr=%v, want [pwd otp]", got)
	}
	if got, want := r.str("verifyMfa.user.email"), u.email; got != want {
		t.Fatalf("user=%q, want %q", got, want)
	}
	s.do(t, access, `{ me { id } }`, nil).mustOK(t)

	// The challenge is used up; the code too, even with a new challenge.
	if got, want := s.verifyMfa(t, ch, now).reason(t), "INVALID_MFA_CHALLENGE"; got != want {
		t.Fatalf("used challenge: reason=%q, want %q", got, want)
	}
	if got, want := s.verifyMfa(t, s.challenge(t, u.email, u.password), now).reason(t), "INVALID_MFA_CODE"; got != want {
		t.Fatalf("code replayed with a new challenge: reason=%q, want %q", got, want)
	}

	// A refreshed access token says how the session signed in, too.
	ref := s.refresh(t, r.str("verifyMfa.refreshToken")).mustOK(t)
	if got := amr(t, ref.str("refresh.accessToken")); strings.Join(got, ",") != "pwd,otp" {
		t.Fatalf("amr after refresh=%v, want [pwd otp]", got)
	}
}

func TestMFAChallengeExpires(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	u := enableMFA(t, e, s, "expiry@example.com")
	ch := s.challenge(t, u.email, u.password)
	e.clock.Advance(5*time.Minute + time.Second)
	if got, want := s.verifyMfa(t, ch, code(t, u.secret, e.clock.Now())).reason(t), "INVALID_MFA_CHALLENGE"; got != want {
		t.Fatalf("expired challenge: reason=%q, want %q", got, want)
	}
	if got, want := s.verifyMfa(t, "mfa_made-up", code(t, u.secret, e.clock.Now())).reason(t), "INVALID_MFA_CHALLENGE"; got != want {
		t.Fatalf("unknown challenge: reason=%q, want %q", got, want)
	}
}

func TestMFARecoveryCodeSingleUse(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	u := enableMFA(t, e, s, "recovery@example.com")
	rc := strings.ToUpper(u.recovery[3]) // typed from paper: case does not matter
	r := s.verifyMfa(t, s.challenge(t, u.email, u.password), rc).mustOK(t)
	if got := amr(t, r.str("verifyMfa.accessToken")); strings.Join(got, ",") != "pwd,otp" {
		t.Fatalf("amr=%v, want [pwd otp]", got)
	}
	if got, want := s.verifyMfa(t, s.challenge(t, u.email, u.password), u.recovery[3]).reason(t), "INVALID_MFA_CODE"; got != want {
		t.Fatalf("recovery code used twice: reason=%q, want %q", got, want)
	}
	s.verifyMfa(t, s.challenge(t, u.email, u.password), u.recovery[4]).mustOK(t)
}

func TestMFAGuessesRateLimited(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_LOGIN_ACCOUNT"] = "3/15m"
	s := e.start(t)
	u := enableMFA(t, e, s, "guess@example.com")
	ch := s.challenge(t, u.email, u.password)
	for i := range 3 {
		if got, want := s.verifyMfa(t, ch, "000000").reason(t), "INVALID_MFA_CODE"; got != want {
			t.Fatalf("guess %d: reason=%q, want %q", i, got, want)
		}
	}
	// The budget is the account's: the right code waits too.
	r := s.verifyMfa(t, ch, code(t, u.secret, e.clock.Now()))
	if got, want := r.code(t), "RATE_LIMITED"; got != want {
		t.Fatalf("after 3 wrong codes: code=%q, want %q", got, want)
	}
	if _, ok := r.Errors[0].Extensions["retryAfter"]; !ok {
		t.Fatalf("no retryAfter in %+v", r.Errors[0].Extensions)
	}
}

func TestMFARequiredDirective(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	u := enableMFA(t, e, s, "directive@example.com")
	cur := code(t, u.secret, e.clock.Now())
	// A session signed in with the password alone is refused.
	for _, q := range []string{`mutation { regenerateRecoveryCodes }`, `mutation { disableTotp(code: "` + cur + `") }`} {
		r := s.do(t, u.Access, q, nil)
		if got, want := r.code(t), "MFA_REQUIRED"; got != want {
			t.Fatalf("%s with a pwd-only token: code=%q, want %q", q, got, want)
		}
	}
	r := s.verifyMfa(t, s.challenge(t, u.email, u.password), cur).mustOK(t)
	strong := r.str("verifyMfa.accessToken")
	e.clock.Advance(30 * time.Second)

	codes := s.do(t, strong, `mutation { regenerateRecoveryCodes }`, nil).mustOK(t).get("regenerateRecoveryCodes").([]any)
	if got, want := len(codes), 10; got != want {
		t.Fatalf("codes=%d, want %d", got, want)
	}
	// disableTotp needs a code as well: the old recovery codes are gone.
	for _, bad := range []string{"", "000000", u.recovery[0]} {
		r := s.do(t, strong, `mutation($c: String!) { disableTotp(code: $c) }`, map[string]any{"c": bad})
		if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
			t.Fatalf("disableTotp(%q): code=%q, want %q", bad, got, want)
		}
	}
	s.do(t, strong, `mutation($c: String!) { disableTotp(code: $c) }`, map[string]any{"c": codes[0]}).mustOK(t)
	if got, want := strings.Join(s.mails(t, u.email), ","), "mfa-changed,mfa-changed,verify-email"; got != want {
		t.Fatalf("mails=%s, want %s", got, want)
	}
	// Off: login gives tokens again.
	s.login(t, u.email, u.password)
}

func TestMFASecretEncryptedAtRest(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	u := enableMFA(t, e, s, "sealed@example.com")
	var stored string
	if err := s.app.db.SQL.QueryRow(`SELECT totp_secret FROM users WHERE email = 'sealed@example.com'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == "" || strings.Contains(stored, u.secret) || !strings.HasPrefix(stored, "v1:") {
		t.Fatalf("stored secret %q: want sealed, not %q", stored, u.secret)
	}
	var hashes int
	if err := s.app.db.SQL.QueryRow(`SELECT COUNT(*) FROM recovery_codes WHERE code_hash = '` + u.recovery[0] + `'`).Scan(&hashes); err != nil {
		t.Fatal(err)
	}
	if hashes != 0 {
		t.Fatal("a recovery code is stored as is")
	}
	if got, want := s.count(t, "recovery_codes"), 10; got != want {
		t.Fatalf("recovery_codes=%d, want %d", got, want)
	}
}
