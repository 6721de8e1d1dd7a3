package auth

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// SessionConfig configures sessions.
type SessionConfig struct {
	// Prefix is prepended to every Redis key (tests and several deployments
	// can share one Redis).
	Prefix string
	// IdleTimeout ends a session unused for this long (30 minutes).
	IdleTimeout time.Duration
	// RefreshTTL is the absolute lifetime of a session and of its refresh
	// tokens (7 days): no refresh extends it.
	RefreshTTL time.Duration
	// ReuseGrace is how long a rotated refresh token may be presented again
	// and get back the same new pair (tabs refreshing at once). After it, a
	// reuse is taken as theft.
	ReuseGrace time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	// Observer counts tokens issued and verified and reuse detections;
	// nil: none.
	Observer Observer
	// MaxSessions caps the live sessions of one user: starting one more
	// ends the oldest. 0: no cap.
	MaxSessions int
	// Ledger is the durable record of ended sessions (the database). Nil
	// only in tests of this package: revocation is then only as durable as
	// Redis.
	Ledger *Ledger
	// Trail records security events this package detects itself (a
	// refresh token reused); nil: none are recorded.
	Trail *Trail
}

// Meta describes the client that starts a session.
type Meta struct {
	UserAgent string
	IP        string
	// AMR is how the sign-in that starts the session was authenticated
	// (RFC 8176); empty: the password alone. Every access token of the
	// session carries it.
	AMR []string
}

// Pair is a freshly issued access and refresh token.
type Pair struct {
	UserID       pulid.ID
	SessionID    string
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time
}

// Session is one signed-in device of a user.
type Session struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	IP         string
}

// Sessions keeps sessions and refresh tokens in Redis and authenticates
// requests. It is safe for concurrent use by any number of instances sharing
// one Redis.
type Sessions struct {
	rdb    redis.UniversalClient
	tokens *Tokens
	keys   keys
	cfg    SessionConfig
	touch  toucher
	rev    *revocations
}

// NewSessions returns a session store over rdb. Revocations travel on bus,
// which the caller runs (bus.Run) once per process; until it is synced,
// Authenticate asks Redis per request.
func NewSessions(rdb redis.UniversalClient, bus *bus.Bus, tokens *Tokens, cfg SessionConfig) *Sessions {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	k := keys{cfg.Prefix}
	s := &Sessions{rdb: rdb, tokens: tokens, keys: k, cfg: cfg, rev: newRevocations(rdb, bus, k, cfg.Now, cfg.Log)}
	if cfg.Ledger != nil {
		bus.OnSync(s.replayLedger)
	}
	return s
}

// replayLedger loads into memory every session the ledger ended recently
// enough for one of its access tokens to be presented: whatever Redis lost,
// memory is complete once synced.
func (s *Sessions) replayLedger(ctx context.Context) error {
	rs, err := s.cfg.Ledger.since(ctx, s.cfg.Now().Add(-s.revocationLife()))
	if err != nil {
		return err
	}
	revs := make([]revocation, len(rs))
	for i, r := range rs {
		revs[i] = revocation{kind: revokedSession, user: r.UserID, id: r.ID, until: r.RevokedAt.Add(s.revocationLife())}
	}
	s.rev.apply(revs...)
	return nil
}

// revocationLife is how long a session's revocation matters: until no
// access token issued before it can be presented.
func (s *Sessions) revocationLife() time.Duration { return s.tokens.TTL() + s.tokens.cfg.Leeway }

// Watch returns a channel that is closed when the viewer's session or
// access token is revoked (as seen by this process), and a function to stop
// watching. Live connections (WebSockets) end on it. While this process is
// not synced, callers must also poll Check: a revocation may then arrive
// only through Redis.
func (s *Sessions) Watch(v Viewer) (<-chan struct{}, func()) {
	return s.rev.watch(v.UserID, v.SessionID, v.TokenID)
}

// Check reports whether the viewer's session is still live and its token
// not revoked, asking Redis (for callers that cannot trust memory, or
// re-check a long-lived connection). Returns ErrSessionRevoked,
// ErrTokenExpired or rdb.ErrUnavailable.
func (s *Sessions) Check(ctx context.Context, v Viewer) error {
	if !s.cfg.Now().Before(v.ExpiresAt.Add(s.tokens.cfg.Leeway)) {
		return ErrTokenExpired
	}
	if s.rev.synced() && !s.rev.predates(v.IssuedAt) {
		if s.rev.isRevoked(v.UserID, v.SessionID, v.TokenID) {
			return ErrSessionRevoked
		}
		return nil
	}
	return s.checkDurable(ctx, v)
}

// Synced reports whether this process's revocation set is complete, so that
// Authenticate answers from memory.
func (s *Sessions) Synced() bool { return s.rev.synced() }

// RefreshTTL is the absolute lifetime of sessions and refresh tokens.
func (s *Sessions) RefreshTTL() time.Duration { return s.cfg.RefreshTTL }

// Tokens returns the access token service the sessions sign with.
func (s *Sessions) Tokens() *Tokens { return s.tokens }

// Start creates a session for a user who has just proven who they are and
// returns its first token pair. version is the user's credentials version
// read with the password that was checked: if it has changed by the time
// the session exists (the password changed meanwhile), the session is
// discarded and ErrInvalidCredentials returned, so no session outlives the
// credentials it was started on. Returns rdb.ErrUnavailable if Redis is down.
func (s *Sessions) Start(ctx context.Context, userID pulid.ID, meta Meta, version int64) (Pair, error) {
	return s.start(ctx, nil, userID, meta, version)
}

// StartIn is Start for a caller inside a database transaction, tx: the
// credentials version is read through it. Read from the pool instead, it
// would need a second connection while tx holds one, and a pool full of
// such transactions, each waiting for another connection, would never
// move.
func (s *Sessions) StartIn(ctx context.Context, tx *ent.Client, userID pulid.ID, meta Meta, version int64) (Pair, error) {
	return s.start(ctx, tx, userID, meta, version)
}

func (s *Sessions) start(ctx context.Context, tx *ent.Client, userID pulid.ID, meta Meta, version int64) (Pair, error) {
	now := s.cfg.Now()
	sid := newSessionID(now)
	rt := newRefreshToken(userID, sid)
	amr := meta.AMR
	if len(amr) == 0 {
		amr = []string{AMRPassword}
	}
	access, claims, err := s.tokens.Issue(userID, sid, amr...)
	if err != nil {
		return Pair{}, err
	}
	nowMs := now.UnixMilli()
	abs := now.Add(s.cfg.RefreshTTL)
	sessKey := s.keys.session(userID, sid)
	idxKey := s.keys.sessions(userID)
	var live *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, sessKey,
			"created", nowMs, "last", nowMs, "abs", abs.UnixMilli(), "cv", version,
			"rt", rt.hash(), "ua", truncate(meta.UserAgent, 256), "ip", meta.IP,
			"amr", strings.Join(amr, ","))
		p.PExpire(ctx, sessKey, min(s.cfg.IdleTimeout, s.cfg.RefreshTTL))
		p.ZAdd(ctx, idxKey, redis.Z{Score: float64(nowMs), Member: sid})
		p.PExpire(ctx, idxKey, s.cfg.RefreshTTL)
		live = p.ZCard(ctx, idxKey)
		return nil
	})
	if err != nil {
		return Pair{}, rdb.Unavailable("start session", err)
	}
	if err := s.confirmVersion(ctx, tx, userID, sid, version); err != nil {
		return Pair{}, err
	}
	s.cfg.Log.LogAttrs(ctx, slog.LevelInfo, "session started",
		slog.String("event", "login"), slog.String("user_id", string(userID)), slog.String("session_id", sid))
	s.cfg.Observer.TokenIssued()
	if n := int(live.Val()); s.cfg.MaxSessions > 0 && n > s.cfg.MaxSessions {
		s.endOldest(ctx, userID, sid, n-s.cfg.MaxSessions)
	}
	return Pair{UserID: userID, SessionID: sid, AccessToken: access, RefreshToken: rt.raw, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// confirmVersion discards a just-started session whose credentials changed
// while it was being started, reading them through tx when it is not nil.
// A user not yet committed (signing up, in the caller's transaction)
// cannot have changed.
func (s *Sessions) confirmVersion(ctx context.Context, tx *ent.Client, uid pulid.ID, sid string, version int64) error {
	if s.cfg.Ledger == nil {
		return nil
	}
	cur, err := s.cfg.Ledger.version(ctx, tx, uid)
	switch {
	case errors.Is(err, errUnknownUser) && version == 0:
		return nil
	case err == nil && cur == version:
		return nil
	}
	// No token of the session was handed out: deleting it is enough.
	if derr := s.discard(ctx, uid, sid); derr != nil {
		s.cfg.Log.WarnContext(ctx, "discard a session started on changed credentials", slog.Any("error", derr))
	}
	if err != nil && !errors.Is(err, errUnknownUser) {
		return err
	}
	return ErrInvalidCredentials
}

// LoginFailure says why a sign-in failed, in the auth log.
type LoginFailure string

// The reasons a sign-in fails. Clients are told neither: both are
// ErrInvalidCredentials.
const (
	UnknownAccount LoginFailure = "unknown_account"
	WrongPassword  LoginFailure = "wrong_password"
)

// LoginFailed records a failed sign-in in the auth log: the account is
// named by a hash of its e-mail, never the address or the password.
func (s *Sessions) LoginFailed(ctx context.Context, email string, reason LoginFailure) {
	s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "login failed", slog.String("event", "login_failed"),
		slog.String("account", hashKey(email)), slog.String("reason", string(reason)))
}

// Authenticate verifies an access token and checks that neither its session
// nor the token itself has been revoked: from memory when this process's
// revocation set is synced (no Redis round trip), otherwise by asking Redis
// that the session is live and the token not blacklisted (one round trip).
//
// Returns ErrInvalidToken, ErrTokenExpired, ErrSessionRevoked, or
// rdb.ErrUnavailable if Redis had to be asked and could not be (the token is
// then not accepted).
func (s *Sessions) Authenticate(ctx context.Context, token string) (Viewer, error) {
	v, err := s.authenticate(ctx, token)
	s.cfg.Observer.TokenVerified(verifyResult(err))
	return v, err
}

func (s *Sessions) authenticate(ctx context.Context, token string) (Viewer, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return Viewer{}, err
	}
	uid := pulid.ID(c.Subject)
	v := Viewer{UserID: uid, SessionID: c.SessionID, TokenID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time, AMR: c.AMR}
	if s.rev.synced() && !s.rev.predates(c.IssuedAt.Time) {
		if s.rev.isRevoked(uid, c.SessionID, c.ID) {
			return Viewer{}, ErrSessionRevoked
		}
		s.Touch(v)
		return v, nil
	}
	if err := s.checkDurable(ctx, v); err != nil {
		return Viewer{}, err
	}
	s.Touch(v)
	return v, nil
}

// AuthenticateLive authenticates the token of a live connection (a
// WebSocket) and starts watching its revocation. The watch is registered
// before the check, so a revocation that lands between the two still ends
// the connection: onRevoke is called (once, from the goroutine that applies
// revocations: it must not block). Call stop when the connection ends.
func (s *Sessions) AuthenticateLive(ctx context.Context, token string, onRevoke func()) (v Viewer, stop func(), err error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		s.cfg.Observer.TokenVerified(verifyResult(err))
		return Viewer{}, nil, err
	}
	v = Viewer{UserID: pulid.ID(c.Subject), SessionID: c.SessionID, TokenID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time, AMR: c.AMR}
	stop = s.rev.watchFunc(v.UserID, v.SessionID, v.TokenID, onRevoke)
	err = s.Check(ctx, v)
	s.cfg.Observer.TokenVerified(verifyResult(err))
	if err != nil {
		stop()
		return Viewer{}, nil, err
	}
	s.Touch(v)
	return v, stop, nil
}

// checkDurable checks, for a caller that cannot trust memory, that the
// viewer's session is live and its token not blacklisted in Redis (one round
// trip), and that the ledger has not ended the session: Redis may have lost
// the end of it.
func (s *Sessions) checkDurable(ctx context.Context, v Viewer) error {
	var live, revoked *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		live = p.Exists(ctx, s.keys.session(v.UserID, v.SessionID))
		revoked = p.Exists(ctx, s.keys.blacklist(v.UserID, v.TokenID))
		return nil
	})
	if err != nil {
		return rdb.Unavailable("check session", err)
	}
	if live.Val() == 0 || revoked.Val() != 0 {
		return ErrSessionRevoked
	}
	if s.cfg.Ledger != nil {
		ended, err := s.cfg.Ledger.ended(ctx, v.SessionID)
		if err != nil {
			return err
		}
		if ended {
			return ErrSessionRevoked
		}
	}
	return nil
}

// List returns the live sessions of a user, oldest first. Index entries of
// sessions that have expired are pruned on the way.
func (s *Sessions) List(ctx context.Context, userID pulid.ID) ([]Session, error) {
	idx := s.keys.sessions(userID)
	sids, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return nil, rdb.Unavailable("list sessions", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(sids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sid := range sids {
			cmds[i] = p.HGetAll(ctx, s.keys.session(userID, sid))
		}
		return nil
	})
	if err != nil {
		return nil, rdb.Unavailable("list sessions", err)
	}
	out := make([]Session, 0, len(sids))
	var stale []any
	for i, cmd := range cmds {
		h := cmd.Val()
		if len(h) == 0 {
			stale = append(stale, sids[i])
			continue
		}
		out = append(out, Session{
			ID:         sids[i],
			CreatedAt:  msTime(h["created"]),
			LastUsedAt: msTime(h["last"]),
			UserAgent:  h["ua"],
			IP:         h["ip"],
		})
	}
	if len(stale) > 0 {
		s.rdb.ZRem(ctx, idx, stale...) // best effort; a failure only leaves garbage
	}
	return out, nil
}

func msTime(s string) time.Time {
	ms, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(ms).UTC()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sessionAMR is how a session signed in (the "amr" of its hash), for the
// tokens a refresh issues; nil for a session without it, or gone.
func (s *Sessions) sessionAMR(ctx context.Context, uid pulid.ID, sid string) ([]string, error) {
	v, err := s.rdb.HGet(ctx, s.keys.session(uid, sid), "amr").Result()
	if errors.Is(err, redis.Nil) || v == "" {
		return nil, nil
	}
	if err != nil {
		return nil, rdb.Unavailable("read session", err)
	}
	return strings.Split(v, ","), nil
}
