package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/auth/mail/mailtest"
	"github.com/authql/authql/ent/entdb/outbox"
	"github.com/authql/authql/graph/client"
)

// mailWait bounds how long a mail takes to arrive: at once normally, or
// after the outbox's longest backoff and poll when the first send failed.
const mailWait = 2*(outbox.MaxBackoff+time.Second) + 5*time.Second

// publicURL is the APP_PUBLIC_URL of the mail tests.
const publicURL = "https://app.example.com"

// newMailEnv is a test environment whose instances deliver mail to a
// Mailpit of their own; the test skips if there is no Mailpit binary.
func newMailEnv(t *testing.T) (*testEnv, *mailtest.Mailpit) {
	t.Helper()
	mp := mailtest.Start(t)
	e := newTestEnv(t)
	e.env["APP_SMTP_URL"] = mp.SMTPURL()
	e.env["APP_PUBLIC_URL"] = publicURL
	return e, mp
}

var linkToken = regexp.MustCompile(`https://app\.example\.com(/[a-z-]+)\?token=([A-Za-z0-9_-]+)`)

// mailToken waits for the n-th mail to to and returns the path and token
// of its link, checking the HTML part carries the same link.
func mailToken(t *testing.T, mp *mailtest.Mailpit, to string, n int) (path, token string) {
	t.Helper()
	msgs := mp.Wait(t, to, n, mailWait)
	m := msgs[n-1]
	sub := linkToken.FindStringSubmatch(m.Text)
	if sub == nil {
		t.Fatalf("mail %q to %s has no link with a token:\n%s", m.Subject, to, m.Text)
	}
	if !strings.Contains(m.HTML, sub[0]) {
		t.Errorf("the HTML part lacks the link %s", sub[0])
	}
	return sub[1], sub[2]
}

func (s *testServer) verifyEmail(t *testing.T, token string) gqlResponse {
	t.Helper()
	return s.do(t, "", `mutation($t: String!) { verifyEmail(token: $t) }`, map[string]any{"t": token})
}

func (s *testServer) resetPassword(t *testing.T, token, pw string) gqlResponse {
	t.Helper()
	return s.do(t, "", `mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }`, map[string]any{"t": token, "p": pw})
}

func (s *testServer) requestReset(t *testing.T, email string) gqlResponse {
	t.Helper()
	return s.do(t, "", `mutation($e: String!) { requestPasswordReset(email: $e) }`, map[string]any{"e": email})
}

func (s *testServer) emailVerified(t *testing.T, access string) bool {
	t.Helper()
	v, _ := s.do(t, access, `{ me { emailVerified } }`, nil).mustOK(t).get("me.emailVerified").(bool)
	return v
}

// wantBadToken checks a refusal of a mailed token: BAD_USER_INPUT naming
// the field token.
func wantBadToken(t *testing.T, what string, r gqlResponse) {
	t.Helper()
	if got, want := r.code(t), "BAD_USER_INPUT"; got != want {
		t.Fatalf("%s: code=%q, want %q", what, got, want)
	}
	if got, want := r.Errors[0].Extensions["field"], "token"; got != want {
		t.Errorf("%s: field=%v, want %v", what, got, want)
	}
}

// Sign-up mails a verification link; the token verifies the address once,
// never twice, and is no reset token.
func TestVerifyEmail(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	if s.emailVerified(t, tok.Access) {
		t.Fatal("verified before the link was followed")
	}
	path, token := mailToken(t, mp, "ann@example.com", 1)
	if path != "/verify-email" {
		t.Fatalf("link path=%q, want /verify-email", path)
	}
	wantBadToken(t, "a verification token as a reset token", s.resetPassword(t, token, "new-plum-tree-42"))
	if got := s.verifyEmail(t, token).mustOK(t).get("verifyEmail"); got != true {
		t.Fatalf("verifyEmail=%v", got)
	}
	if !s.emailVerified(t, tok.Access) {
		t.Fatal("not verified after the link was followed")
	}
	wantBadToken(t, "the same token again", s.verifyEmail(t, token))
	wantBadToken(t, "a token never issued", s.verifyEmail(t, token[:len(token)-2]+"AA"))
	wantBadToken(t, "an empty token", s.verifyEmail(t, ""))
}

// A verification link stops working after 24 hours, a reset link after
// 30 minutes.
func TestMailedTokensExpire(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	s := e.start(t)
	s.register(t, "bo@example.com", "plum-tree-42", "Bo")
	_, verify := mailToken(t, mp, "bo@example.com", 1)
	s.requestReset(t, "bo@example.com").mustOK(t)
	_, reset := mailToken(t, mp, "bo@example.com", 2)
	e.clock.Advance(31 * time.Minute)
	wantBadToken(t, "a reset token after 31 minutes", s.resetPassword(t, reset, "new-plum-tree-42"))
	e.clock.Advance(24 * time.Hour)
	wantBadToken(t, "a verification token after 24 hours", s.verifyEmail(t, verify))
}

// A reset ends every session of the account on every instance (access
// tokens and refresh tokens alike), voids the other reset links, marks the
// address verified and mails the owner; the link works once.
func TestPasswordResetEndsEverySessionEverywhere(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	onA := a.register(t, "cy@example.com", "plum-tree-42", "Cy")
	onB := b.login(t, "cy@example.com", "plum-tree-42")
	mp.Wait(t, "cy@example.com", 1, mailWait) // the verification mail
	a.requestReset(t, "cy@example.com").mustOK(t)
	_, first := mailToken(t, mp, "cy@example.com", 2)
	b.requestReset(t, "cy@example.com").mustOK(t)
	path, second := mailToken(t, mp, "cy@example.com", 3)
	if path != "/reset-password" {
		t.Fatalf("link path=%q, want /reset-password", path)
	}
	if r := a.resetPassword(t, second, "short"); r.code(t) != "BAD_USER_INPUT" || r.Errors[0].Extensions["field"] != "newPassword" {
		t.Fatalf("a short password: %+v", r.Errors)
	}
	a.resetPassword(t, second, "new-plum-tree-42").mustOK(t)

	for _, c := range []struct {
		name   string
		s      *testServer
		access string
	}{{"A's token on B", b, onA.Access}, {"B's token on B", b, onB.Access}, {"B's token on A", a, onB.Access}, {"A's token on A", a, onA.Access}} {
		if got := c.s.do(t, c.access, `{ me { id } }`, nil).code(t); got != "UNAUTHENTICATED" {
			t.Errorf("%s after the reset: code=%q, want UNAUTHENTICATED", c.name, got)
		}
	}
	for _, rt := range []string{onA.Refresh, onB.Refresh} {
		if got := b.refresh(t, rt).code(t); got != "UNAUTHENTICATED" {
			t.Errorf("refresh after the reset: code=%q, want UNAUTHENTICATED", got)
		}
	}
	wantBadToken(t, "the used link again", b.resetPassword(t, second, "other-plum-tree-42"))
	wantBadToken(t, "the earlier link", b.resetPassword(t, first, "other-plum-tree-42"))
	if r := a.do(t, "", `mutation { login(input: {email: "cy@example.com", password: "plum-tree-42"}) { accessToken } }`, nil); r.code(t) != "UNAUTHENTICATED" {
		t.Fatal("the old password still signs in")
	}
	tok := b.login(t, "cy@example.com", "new-plum-tree-42")
	if !b.emailVerified(t, tok.Access) {
		t.Error("the address is not verified after a reset link reached it")
	}
	msgs := mp.Wait(t, "cy@example.com", 4, mailWait)
	if !strings.Contains(msgs[3].Subject, "password was changed") {
		t.Errorf("fourth mail %q, want the password-changed notice", msgs[3].Subject)
	}
}

// With verified addresses required, sign-up returns no tokens, login waits
// for the link, and an address that has an account gets the answer of a
// new one while its owner is mailed.
func TestRequireVerifiedEmail(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	e.env["APP_REQUIRE_VERIFIED_EMAIL"] = "true"
	s := e.start(t)
	register := func(email string) gqlResponse {
		return s.do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			map[string]any{"in": map[string]any{"email": email, "password": "plum-tree-42", "name": "Di"}})
	}
	first := register("di@example.com")
	if got, want := first.code(t), "EMAIL_NOT_VERIFIED"; got != want {
		t.Fatalf("register: code=%q, want %q", got, want)
	}
	again := register("di@example.com")
	if got, want := shape(t, again), shape(t, first); got != want {
		t.Errorf("registering an existing address answers\n%s\nand a new one\n%s", got, want)
	}
	msgs := mp.Wait(t, "di@example.com", 2, mailWait)
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Subject)
	}
	if !slices.ContainsFunc(subjects, func(s string) bool { return strings.Contains(s, "tried to sign up") }) {
		t.Errorf("the owner was not told of the second sign-up: %q", subjects)
	}
	login := `mutation($p: String!) { login(input: {email: "di@example.com", password: $p}) { accessToken } }`
	if got := s.do(t, "", login, map[string]any{"p": "wrong-password-1"}).code(t); got != "UNAUTHENTICATED" {
		t.Errorf("wrong password before verification: code=%q, want UNAUTHENTICATED", got)
	}
	if got := s.do(t, "", login, map[string]any{"p": "plum-tree-42"}).code(t); got != "EMAIL_NOT_VERIFIED" {
		t.Errorf("login before verification: code=%q, want EMAIL_NOT_VERIFIED", got)
	}
	s.do(t, "", `mutation { resendVerification(email: "di@example.com") }`, nil).mustOK(t)
	_, token := mailToken(t, mp, "di@example.com", 3)
	s.verifyEmail(t, token).mustOK(t)
	s.do(t, "", login, map[string]any{"p": "plum-tree-42"}).mustOK(t)
}

// shape is a response with its messages and codes, the parts a client
// sees, as JSON.
func shape(t *testing.T, r gqlResponse) string {
	t.Helper()
	b, err := json.Marshal(struct {
		Status int
		Data   map[string]any
		Errors []gqlError
	}{r.Status, r.Data, r.Errors})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The mail server is down when a mail is written: the mail waits in the
// outbox and arrives, once, when the server is back.
func TestMailSurvivesSMTPDown(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	s := e.start(t)
	mp.Stop()
	s.register(t, "ed@example.com", "plum-tree-42", "Ed")
	time.Sleep(300 * time.Millisecond) // the first send fails meanwhile
	mp.Restart(t)
	mailToken(t, mp, "ed@example.com", 1)
	time.Sleep(outbox.MaxBackoff + time.Second)
	if got := mp.Messages(t, "ed@example.com"); len(got) != 1 {
		t.Fatalf("%d mails, want exactly 1", len(got))
	}
}

// A reset mail that could not be sent before its link expired is never
// sent (the link would only be refused) and leaves the outbox; the mails
// around it are sent. The request is answered before its mail is written
// (the same answer, in the same time, for any address), so the clock moves
// once the mail is in the outbox; and the mail server stays down until it
// has left the outbox, so an attempt that read the clock before it moved
// can only fail, never send the expired link.
func TestMailWithAnExpiredLinkIsNotSent(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	s := e.start(t)
	s.register(t, "fay@example.com", "plum-tree-42", "Fay")
	mailToken(t, mp, "fay@example.com", 1) // the verification mail
	// Mailpit lists a mail once it has taken it, before the session ends;
	// stopped then, the sender sees an error and the mail stays in the
	// outbox to be sent again. Stop it once the sender has seen it through.
	rows := func() int { return s.app.db.Client.Outbox.Query().CountX(t.Context()) }
	waitUntil(t, "the verification mail out of the outbox", func() bool { return rows() == 0 })
	mp.Stop()
	s.requestReset(t, "fay@example.com").mustOK(t)
	waitUntil(t, "the reset mail written", func() bool { return rows() > 0 })
	e.clock.Advance(31 * time.Minute) // the reset link works 30
	waitUntil(t, "the reset mail out of the outbox", func() bool { return rows() == 0 })
	mp.Restart(t)
	if got := mp.Messages(t, "fay@example.com"); len(got) != 1 {
		t.Fatalf("%d mails, want the verification mail only", len(got))
	}
	s.requestReset(t, "fay@example.com").mustOK(t)
	mailToken(t, mp, "fay@example.com", 2) // a new link is sent at once
}

// The link's page does not spend the token on GET (a mail scanner
// fetching it); its form's POST does. The page holds a CSP without script.
func TestVerifyPage(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	s := e.start(t)
	tok := s.register(t, "fay@example.com", "plum-tree-42", "Fay")
	_, token := mailToken(t, mp, "fay@example.com", 1)
	for range 2 {
		res, err := s.Client().Get(s.URL + "/verify-email?token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `method="post"`) {
			t.Fatalf("GET: %d\n%s", res.StatusCode, body)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("CSP %q", csp)
		}
	}
	if s.emailVerified(t, tok.Access) {
		t.Fatal("a GET of the link verified the address")
	}
	res, err := s.Client().PostForm(s.URL+"/verify-email", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !s.emailVerified(t, tok.Access) {
		t.Fatalf("POST: %d, verified=%v\n%s", res.StatusCode, s.emailVerified(t, tok.Access), body)
	}
	res, _ = s.Client().PostForm(s.URL+"/verify-email", url.Values{"token": {token}})
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("second POST: %d, want 400", res.StatusCode)
	}
}

// median of the durations.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// withinNoise reports whether two medians differ by less than the noise
// of a loaded test machine: 25 ms, or a third of the larger one.
func withinNoise(a, b time.Duration) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d < max(25*time.Millisecond, max(a, b)/3)
}

// requestPasswordReset and register (verified addresses required) answer
// a known and an unknown address with the same response, in the same time
// (medians of interleaved requests).
func TestNoEnumerationThroughMail(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	e.env["APP_REQUIRE_VERIFIED_EMAIL"] = "true"
	for _, k := range []string{"APP_RATE_MAIL_IP", "APP_RATE_MAIL_ACCOUNT", "APP_RATE_REGISTER_IP", "APP_RATE_API"} {
		e.env[k] = "off"
	}
	s := e.start(t)
	register := func(email string) gqlResponse {
		return s.do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			map[string]any{"in": map[string]any{"email": email, "password": "plum-tree-42", "name": "Gil"}})
	}
	register("gil@example.com")
	mp.Wait(t, "gil@example.com", 1, mailWait)

	const n = 15
	timed := func(f func() gqlResponse) (time.Duration, string) {
		start := time.Now()
		r := f()
		return time.Since(start), shape(t, r)
	}
	var known, unknown []time.Duration
	for i := range n {
		d, a := timed(func() gqlResponse { return s.requestReset(t, "gil@example.com") })
		known = append(known, d)
		d, b := timed(func() gqlResponse { return s.requestReset(t, "nobody"+string(rune('a'+i))+"@example.com") })
		unknown = append(unknown, d)
		if a != b {
			t.Fatalf("requestPasswordReset answers a known address\n%s\nand an unknown one\n%s", a, b)
		}
	}
	t.Logf("requestPasswordReset: median %v for a known address, %v for an unknown one (n=%d)", median(known), median(unknown), n)
	if !withinNoise(median(known), median(unknown)) {
		t.Errorf("requestPasswordReset: median %v known, %v unknown: the time tells them apart", median(known), median(unknown))
	}

	known, unknown = nil, nil
	for i := range n {
		d, a := timed(func() gqlResponse { return register("gil@example.com") })
		known = append(known, d)
		d, b := timed(func() gqlResponse { return register("new" + string(rune('a'+i)) + "@example.com") })
		unknown = append(unknown, d)
		if a != b {
			t.Fatalf("register answers an existing address\n%s\nand a new one\n%s", a, b)
		}
	}
	t.Logf("register: median %v for an existing address, %v for a new one (n=%d)", median(known), median(unknown), n)
	if !withinNoise(median(known), median(unknown)) {
		t.Errorf("register: median %v existing, %v new: the time tells them apart", median(known), median(unknown))
	}
	// The known address got its reset links, the unknown ones nothing.
	mp.Wait(t, "gil@example.com", 1+n+n, mailWait)
	if got := mp.Messages(t, "nobodya@example.com"); len(got) != 0 {
		t.Errorf("%d mails to an address without an account", len(got))
	}
}

// Without APP_SMTP_URL (development) a mail goes to the auth log, and
// `server mails`, another process on the same database, lists it with a
// link that works: its page answers and its token verifies the address.
func TestMailsCommandListsLoggedMail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_PUBLIC_URL"] = "http://localhost:8080"
	s := e.start(t)
	tok := s.register(t, "hal@example.com", "plum-tree-42", "Hal")
	var out strings.Builder
	deadline := time.Now().Add(mailWait)
	for !strings.Contains(out.String(), "hal@example.com") {
		if time.Now().After(deadline) {
			t.Fatalf("server mails never listed the mail:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
		out.Reset()
		if err := runWith(t.Context(), []string{"mails", "-n", "5"}, map[string]string{"DATABASE_URL": e.dsn}, &out, io.Discard); err != nil {
			t.Fatalf("server mails: %v", err)
		}
	}
	m := regexp.MustCompile(`http://localhost:8080/verify-email\?token=([A-Za-z0-9_-]+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no verification link in\n%s", out.String())
	}
	if !strings.Contains(s.logs.String(), m[0]) {
		t.Errorf("the link is not in the log stream")
	}
	res, err := s.Client().Get(s.URL + "/verify-email?token=" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the link's page: %d", res.StatusCode)
	}
	s.verifyEmail(t, m[1]).mustOK(t)
	if !s.emailVerified(t, tok.Access) {
		t.Fatal("the listed link did not verify the address")
	}
}

// Where only trusted documents run (the Go client's manifest), the link
// pages still work: they send the client's own documents.
func TestVerifyPageUnderTrustedDocuments(t *testing.T) {
	t.Parallel()
	e, mp := newMailEnv(t)
	e.env["APP_TRUSTED_DOCUMENTS"] = "../graph/client/persisted-documents.json"
	s := e.start(t)
	s.do(t, "", client.Register_Operation, map[string]any{"input": map[string]any{
		"email": "ivy@example.com", "password": "plum-tree-42", "name": "Ivy"}}).mustOK(t)
	_, token := mailToken(t, mp, "ivy@example.com", 1)
	for _, want := range []int{http.StatusOK, http.StatusBadRequest} { // the second: spent
		res, err := s.Client().PostForm(s.URL+"/verify-email", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("POST: %d, want %d\n%s", res.StatusCode, want, body)
		}
	}
}
