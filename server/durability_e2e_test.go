package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/ent/schema/pulid"
)

// newTestEnvOn is newTestEnv with a Redis of the test's choosing.
func newTestEnvOn(t *testing.T, cfg rdb.Config) *testEnv {
	t.Helper()
	r := &cachetest.Redis{Prefix: "test:" + strings.ToLower(string(pulid.New("TE", time.Now()))[16:28]) + ":", Config: cfg}
	r.Client = cachetest.Open(t, cfg)
	return &testEnv{dsn: entdbtest.DSN(t), redis: r, clock: &fakeClock{t: time.Now()}, env: map[string]string{}}
}

// waitLog waits until every instance's log contains s.
func waitLog(t *testing.T, s string, servers ...*testServer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, srv := range servers {
		for !strings.Contains(srv.logs.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("%q never logged; log:\n%s", s, srv.logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Redis losing writes brings nothing revoked back. Redis is restarted from
// a snapshot taken before a logout and before a reuse detection: the
// sessions, their refresh tokens and the attacker's rotation are all back
// in Redis, and Redis's own record of the revocations is gone. Every
// instance (those that lived through it and one started after) still
// refuses every revoked access and refresh token.
func TestRevocationsSurviveRedisRestoredFromOldSnapshot(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	e := newTestEnvOn(t, rdb.Config{URL: srv.URL})
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	ann := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := a.register(t, "bob@example.com", "plum-tree-42", "Bob")
	thief := a.refresh(t, bob.Refresh).mustOK(t) // the thief uses a copy first
	snapshot := srv.Snapshot(t.Context())

	a.do(t, ann.Access, `mutation { logout }`, nil).mustOK(t)
	e.clock.Advance(11 * time.Second) // beyond the grace window
	if got, want := a.refresh(t, bob.Refresh).Errors[0].Extensions["reason"], "REFRESH_TOKEN_REUSED"; got != want {
		t.Fatalf("victim's reuse: reason=%v, want %v", got, want)
	}

	srv.Restore(snapshot)
	waitLog(t, "redis_changed", a, b)
	c := e.start(t) // started after the loss: it never saw the revocations
	waitSynced(t, a, b, c)
	if n := len(cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"session:*")); n != 2 {
		t.Fatalf("%d sessions in the restored Redis, want both revoked ones back (2)", n)
	}
	for name, s := range map[string]*testServer{"A": a, "B": b, "C (new)": c} {
		for who, tok := range map[string]string{"ann (logged out)": ann.Access, "bob (stolen)": bob.Access, "thief": thief.str("refresh.accessToken")} {
			if got, want := s.do(t, tok, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
				t.Errorf("instance %s, %s's access token: code=%q, want %q", name, who, got, want)
			}
		}
	}
	for who, rt := range map[string]string{"ann": ann.Refresh, "thief": thief.str("refresh.refreshToken")} {
		if r := c.refresh(t, rt); len(r.Errors) == 0 {
			t.Errorf("%s's revoked refresh token works again after Redis lost the revocation", who)
		}
	}
	// Redis has been mended: the sessions the ledger ended are gone again.
	if n := len(cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"session:*")); n != 0 {
		t.Errorf("%d revoked sessions still in Redis after they were refused, want 0", n)
	}
}

// A password change is a new session: a copy of the old access token
// (stolen, or handed out in the grace window) stops working at once on
// every instance, and so does every other device.
func TestPasswordChangeIsANewSessionEverywhere(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	laptop := a.register(t, "cy@example.com", "plum-tree-42", "Cy")
	phone := a.login(t, "cy@example.com", "plum-tree-42")
	r := a.do(t, laptop.Access, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken refreshToken } }`,
		map[string]any{"c": "plum-tree-42", "n": "cedar-lake-77"}).mustOK(t)
	fresh := r.str("changePassword.accessToken")
	if sid(t, fresh) == sid(t, laptop.Access) {
		t.Errorf("the new token names the old session %s", sid(t, fresh))
	}
	for name, s := range map[string]*testServer{"A": a, "B": b} {
		for who, tok := range map[string]string{"laptop (old token)": laptop.Access, "phone": phone.Access} {
			r := s.do(t, tok, `{ me { id } }`, nil)
			if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
				t.Errorf("instance %s, %s: code=%q, want %q", name, who, got, want)
			}
		}
		s.do(t, fresh, `{ me { id } }`, nil).mustOK(t)
	}
	for who, rt := range map[string]string{"laptop": laptop.Refresh, "phone": phone.Refresh} {
		if r := b.refresh(t, rt); len(r.Errors) == 0 {
			t.Errorf("%s's refresh token survived the password change", who)
		}
	}
	b.refresh(t, r.str("changePassword.refreshToken")).mustOK(t)
	if r := a.do(t, "", `mutation { login(input: {email: "cy@example.com", password: "plum-tree-42"}) { accessToken } }`, nil); len(r.Errors) == 0 {
		t.Error("the old password still signs in")
	}
}

// sid reads the session id of an access token (its claims are not secret).
func sid(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.SID
}

// Commit, then revoke, and nothing slips through the gap: a session started
// on the old credentials after the new ones committed is discarded, and a
// session that appears between the listing of sessions and their deletion
// is revoked like the listed ones, on every instance.
func TestPasswordChangeLeavesNoSessionBehind(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	dee := a.register(t, "dee@example.com", "plum-tree-42", "Dee")
	uid := pulid.ID(dee.UserID)
	ctx := context.Background()
	ss := a.app.sessions

	// The steps of changePassword, with a login landing between them.
	listed, err := ss.IDs(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	meanwhile, err := ss.Start(ctx, uid, auth.Meta{IP: "192.0.2.7"}, 0) // read the old version, checked the old password
	if err != nil {
		t.Fatal(err)
	}
	if err := a.app.db.Client.User.UpdateOneID(uid).AddCredentialsVersion(1).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ss.Ledger().Record(ctx, nil, uid, listed, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	late, err := ss.Start(ctx, uid, auth.Meta{IP: "192.0.2.8"}, 0) // the old version, after the commit
	if err == nil || !strings.Contains(err.Error(), auth.ErrInvalidCredentials.Error()) {
		t.Errorf("a session started on the old credentials after they changed: err=%v, want %v", err, auth.ErrInvalidCredentials)
	}
	if err := ss.EndAll(ctx, uid, "password_changed", listed); err != nil {
		t.Fatal(err)
	}
	// The session that was not listed is revoked from memory on B too.
	r := b.do(t, meanwhile.AccessToken, `{ me { id } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("the session started meanwhile: code=%q, want %q", got, want)
	}
	if got := authCostOf(r); got != 0 {
		t.Errorf("refused with %v Redis round trips: the revocation was not published", got)
	}
	if late.RefreshToken != "" {
		if r := b.refresh(t, late.RefreshToken); len(r.Errors) == 0 {
			t.Error("the discarded session refreshes")
		}
	}
	if n := len(cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"session:{"+dee.UserID+"}:*")); n != 0 {
		t.Errorf("%d sessions left in Redis, want 0", n)
	}
}

// A client that disconnects in the middle of a logout does not leave its
// session revoked here and alive in Redis: the sequence runs to the end.
// Instance B's connections to Redis are frozen, so A's logout waits for B;
// the client gives up during the wait.
func TestLogoutRunsToTheEndWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if e.redis.Config.URL == "" {
		t.Skip("the proxy stands in front of a single Redis node only")
	}
	a := e.start(t)
	proxy := cachetest.NewProxy(t, e.redis.Config.URL)
	b := e.startWithRedis(t, rdb.Config{URL: proxy.URL})
	waitSynced(t, a, b)
	eve := a.register(t, "eve@example.com", "plum-tree-42", "Eve")

	proxy.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/query", bytes.NewReader([]byte(`{"query":"mutation { logout }"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+eve.Access)
	if res, err := a.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatal("the logout answered while B was frozen; the client should have given up first")
	}
	// A's wait for B runs out (bus.AckTimeout) and the logout goes on to
	// its end: the session leaves Redis while B is still frozen.
	deadline := time.Now().Add(5 * time.Second)
	for len(cachetest.Keys(t, e.redis.Client, e.redis.Prefix+"session:{"+eve.UserID+"}:*")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the session is still in Redis after its logout was abandoned by the client")
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Thaw()
	for name, s := range map[string]*testServer{"A": a, "B": b} {
		if got, want := s.do(t, eve.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("instance %s: code=%q, want %q", name, got, want)
		}
	}
}
