package auth

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/ent/schema/pulid"
)

// Session settings of these tests.
const (
	testIdle  = 30 * time.Minute
	testGrace = 30 * time.Second
)

var (
	testMeta  = Meta{UserAgent: "test-agent/1.0", IP: "192.0.2.10"}
	otherMeta = Meta{UserAgent: "other-agent/2.0", IP: "198.51.100.7"}
)

// safeClock is a clock the test moves while the code under test reads it
// from its own goroutines.
type safeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *safeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *safeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingObserver counts what Sessions reports.
type countingObserver struct {
	NopObserver
	issued, reused atomic.Int64
}

func (o *countingObserver) TokenIssued()   { o.issued.Add(1) }
func (o *countingObserver) ReuseDetected() { o.reused.Add(1) }

// sessionsEnv is one process's Sessions over a real Redis (cachetest) and
// a real database (entdbtest), with one user.
type sessionsEnv struct {
	s     *Sessions
	clock *safeClock
	obs   *countingObserver
	r     *cachetest.Redis
	db    *entdb.DB
	user  pulid.ID
}

// newSessionsEnv starts a process over a fresh Redis prefix and database.
func newSessionsEnv(t *testing.T) *sessionsEnv {
	t.Helper()
	db := entdbtest.Open(t)
	ids, err := entdbtest.Seed(t.Context(), db.Client, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := &sessionsEnv{clock: &safeClock{t: time.Now()}, r: cachetest.New(t), db: db, user: ids[0]}
	e.s, e.obs = e.process(t)
	return e
}

// process starts another process on the same Redis and database (its own
// client, bus and memory), synced when it returns.
func (e *sessionsEnv) process(t *testing.T) (*Sessions, *countingObserver) {
	t.Helper()
	rdb := cachetest.Open(t, e.r.Config)
	tokens := mustNewTokens(t, TokenConfig{
		Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Signing: HMACKey(testSecret), Now: e.clock.Now,
	})
	b := bus.New(rdb, e.r.Prefix, nil)
	obs := &countingObserver{}
	s := NewSessions(rdb, b, tokens, SessionConfig{
		Prefix: e.r.Prefix, IdleTimeout: testIdle, RefreshTTL: 7 * 24 * time.Hour, ReuseGrace: testGrace,
		Now: e.clock.Now, Observer: obs, Ledger: NewLedger(e.db.Client),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for !s.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("the session store never synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, obs
}

func (e *sessionsEnv) mustStart(t *testing.T) Pair {
	t.Helper()
	p, err := e.s.Start(t.Context(), e.user, testMeta, 0)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return p
}

func (e *sessionsEnv) mustRefresh(t *testing.T, refresh string, meta Meta) Pair {
	t.Helper()
	p, err := e.s.Refresh(t.Context(), refresh, meta)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return p
}

func (e *sessionsEnv) mustAuthenticate(t *testing.T, access string) Viewer {
	t.Helper()
	v, err := e.s.Authenticate(t.Context(), access)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return v
}

// sessionIDs are the user's live sessions, oldest first.
func (e *sessionsEnv) sessionIDs(t *testing.T) []string {
	t.Helper()
	ss, err := e.s.List(t.Context(), e.user)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err=%v, want %v", what, err, want)
	}
}

// A started session authenticates its access token and is listed with the
// client that started it.
func TestSessionsStart(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	p := e.mustStart(t)
	if got, want := p.UserID, e.user; got != want {
		t.Errorf("UserID=%v, want %v", got, want)
	}
	v := e.mustAuthenticate(t, p.AccessToken)
	if got, want := v.SessionID, p.SessionID; got != want {
		t.Errorf("SessionID=%v, want %v", got, want)
	}
	ss, err := e.s.List(t.Context(), e.user)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].ID != p.SessionID || ss[0].UserAgent != testMeta.UserAgent || ss[0].IP != testMeta.IP {
		t.Errorf("List=%+v, want the one session with its client", ss)
	}
}

// A session started on credentials that changed meanwhile (a password
// change between the password check and the start) is not kept.
func TestSessionsStartOnChangedCredentials(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	_, err := e.s.Start(t.Context(), e.user, testMeta, 1) // the database has version 0
	wantErr(t, "Start", err, ErrInvalidCredentials)
	if ids := e.sessionIDs(t); len(ids) != 0 {
		t.Errorf("sessions left: %v", ids)
	}
}

// Refresh retires the presented token and returns a new pair of the same
// session; the new refresh token rotates in turn.
func TestSessionsRefreshRotates(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	p1 := e.mustStart(t)
	p2 := e.mustRefresh(t, p1.RefreshToken, testMeta)
	if p2.SessionID != p1.SessionID {
		t.Errorf("SessionID=%v, want %v", p2.SessionID, p1.SessionID)
	}
	if p2.RefreshToken == p1.RefreshToken || p2.AccessToken == p1.AccessToken {
		t.Error("Refresh returned a token it was given")
	}
	e.mustAuthenticate(t, p2.AccessToken)
	e.mustRefresh(t, p2.RefreshToken, testMeta)
	if got, want := e.obs.issued.Load(), int64(3); got != want {
		t.Errorf("tokens issued=%d, want %d", got, want)
	}
}

// The same token presented again within the grace window by the client
// that rotated it gets the very pair already issued for it, never a
// second one, and the session goes on.
func TestSessionsRefreshGrace(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	p1 := e.mustStart(t)
	p2 := e.mustRefresh(t, p1.RefreshToken, testMeta)
	e.clock.Add(testGrace / 2)
	again := e.mustRefresh(t, p1.RefreshToken, testMeta)
	if again.AccessToken != p2.AccessToken || again.RefreshToken != p2.RefreshToken {
		t.Error("a refresh within the grace window minted a second pair")
	}
	if got, want := e.obs.issued.Load(), int64(2); got != want {
		t.Errorf("tokens issued=%d, want %d (start and one rotation)", got, want)
	}
	e.mustRefresh(t, p2.RefreshToken, testMeta)
}

// A rotated token presented again after the grace window, or by another
// client within it, is taken as stolen: the session ends everywhere (its
// refresh and access tokens), and the ledger records it.
func TestSessionsRefreshReuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration
		meta  Meta
	}{
		{"after the grace window", testGrace + time.Millisecond, testMeta},
		{"by another client within it", time.Second, otherMeta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSessionsEnv(t)
			p1 := e.mustStart(t)
			p2 := e.mustRefresh(t, p1.RefreshToken, testMeta)
			e.clock.Add(tc.after)
			_, err := e.s.Refresh(t.Context(), p1.RefreshToken, tc.meta)
			wantErr(t, "the reused token", err, ErrRefreshReused)
			if got := e.obs.reused.Load(); got != 1 {
				t.Errorf("reuse detections=%d, want 1", got)
			}
			_, err = e.s.Refresh(t.Context(), p2.RefreshToken, testMeta)
			wantErr(t, "the current token", err, ErrInvalidRefreshToken)
			_, err = e.s.Authenticate(t.Context(), p2.AccessToken)
			wantErr(t, "the access token", err, ErrSessionRevoked)
			ended, err := e.s.Ledger().ended(t.Context(), p1.SessionID)
			if err != nil || !ended {
				t.Errorf("ledger: ended=%v, %v, want true", ended, err)
			}
		})
	}
}

// A session unused for the idle timeout ends at its next refresh.
func TestSessionsIdleExpiry(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	p := e.mustStart(t)
	e.clock.Add(testIdle)
	_, err := e.s.Refresh(t.Context(), p.RefreshToken, testMeta)
	wantErr(t, "Refresh", err, ErrInvalidRefreshToken)
	if ids := e.sessionIDs(t); len(ids) != 0 {
		t.Errorf("sessions left: %v", ids)
	}
}

// Logout ends the current session (and blacklists its access token), the
// others, or all of them; all also invalidates the credentials a session
// may be starting on at that moment.
func TestSessionsLogout(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	a, b, c := e.mustStart(t), e.mustStart(t), e.mustStart(t)
	va := e.mustAuthenticate(t, a.AccessToken)

	ended, err := e.s.Logout(t.Context(), va, ScopeOthers)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ended)
	want := []string{b.SessionID, c.SessionID}
	slices.Sort(want) // two ids made in one millisecond need not sort in the order they were made
	if !slices.Equal(ended, want) {
		t.Errorf("ScopeOthers ended %v, want %v", ended, want)
	}
	e.mustAuthenticate(t, a.AccessToken)
	_, err = e.s.Authenticate(t.Context(), b.AccessToken)
	wantErr(t, "an other session's access token", err, ErrSessionRevoked)
	_, err = e.s.Refresh(t.Context(), c.RefreshToken, testMeta)
	wantErr(t, "an other session's refresh token", err, ErrInvalidRefreshToken)

	if _, err := e.s.Logout(t.Context(), va, ScopeCurrent); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Authenticate(t.Context(), a.AccessToken)
	wantErr(t, "the current session's access token", err, ErrSessionRevoked)
	_, err = e.s.Refresh(t.Context(), a.RefreshToken, testMeta)
	wantErr(t, "the current session's refresh token", err, ErrInvalidRefreshToken)

	d, f := e.mustStart(t), e.mustStart(t)
	if _, err := e.s.Logout(t.Context(), e.mustAuthenticate(t, d.AccessToken), ScopeAll); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Pair{d, f} {
		_, err = e.s.Authenticate(t.Context(), p.AccessToken)
		wantErr(t, "after ScopeAll", err, ErrSessionRevoked)
	}
	_, err = e.s.Start(t.Context(), e.user, testMeta, 0) // checked before ScopeAll
	wantErr(t, "a session started on the old credentials", err, ErrInvalidCredentials)
	if ids := e.sessionIDs(t); len(ids) != 0 {
		t.Errorf("sessions left: %v", ids)
	}
}

// The ledger outlives Redis: a session it ended stays ended though Redis
// lost the end (the session is still there), at refresh, and in the
// memory of a process that syncs later.
func TestSessionsLedgerOutlivesRedis(t *testing.T) {
	t.Parallel()
	e := newSessionsEnv(t)
	p := e.mustStart(t)
	// The end reached the ledger only: Redis still has the session.
	if err := e.s.Ledger().Record(t.Context(), nil, e.user, []string{p.SessionID}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	late, _ := e.process(t)
	_, err := late.Authenticate(t.Context(), p.AccessToken)
	wantErr(t, "a process synced after the end", err, ErrSessionRevoked)

	_, err = e.s.Refresh(t.Context(), p.RefreshToken, testMeta)
	wantErr(t, "Refresh", err, ErrInvalidRefreshToken)
	if ids := e.sessionIDs(t); len(ids) != 0 {
		t.Errorf("the refresh left the ended session in Redis: %v", ids)
	}
}
