package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache"
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
}

// Meta describes the client that starts a session.
type Meta struct {
	UserAgent string
	IP        string
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
func NewSessions(rdb redis.UniversalClient, bus *cache.Bus, tokens *Tokens, cfg SessionConfig) *Sessions {
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
	return &Sessions{rdb: rdb, tokens: tokens, keys: k, cfg: cfg, rev: newRevocations(rdb, bus, k, cfg.Now, cfg.Log)}
}

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
// ErrTokenExpired or ErrUnavailable.
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
	return s.checkRedis(ctx, v)
}

// Synced reports whether this process's revocation set is complete, so that
// Authenticate answers from memory.
func (s *Sessions) Synced() bool { return s.rev.synced() }

// RefreshTTL is the absolute lifetime of sessions and refresh tokens.
func (s *Sessions) RefreshTTL() time.Duration { return s.cfg.RefreshTTL }

// Tokens returns the access token service the sessions sign with.
func (s *Sessions) Tokens() *Tokens { return s.tokens }

// Start creates a session for a user who has just proven who they are and
// returns its first token pair. Returns ErrUnavailable if Redis is down.
func (s *Sessions) Start(ctx context.Context, userID pulid.ID, meta Meta) (Pair, error) {
	sid := newSessionID(s.cfg.Now())
	rt := newRefreshToken(userID, sid)
	access, claims, err := s.tokens.Issue(userID, sid)
	if err != nil {
		return Pair{}, err
	}
	now := s.cfg.Now()
	nowMs := now.UnixMilli()
	abs := now.Add(s.cfg.RefreshTTL)
	sessKey := s.keys.session(userID, sid)
	refKey := s.keys.refresh(userID, rt.hash())
	idxKey := s.keys.sessions(userID)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, sessKey,
			"created", nowMs, "last", nowMs, "abs", abs.UnixMilli(),
			"rt", rt.hash(), "ua", truncate(meta.UserAgent, 256), "ip", meta.IP)
		p.PExpire(ctx, sessKey, min(s.cfg.IdleTimeout, s.cfg.RefreshTTL))
		p.HSet(ctx, refKey, "sid", sid)
		p.PExpire(ctx, refKey, s.cfg.RefreshTTL)
		p.ZAdd(ctx, idxKey, redis.Z{Score: float64(nowMs), Member: sid})
		p.PExpire(ctx, idxKey, s.cfg.RefreshTTL)
		return nil
	})
	if err != nil {
		return Pair{}, unavailable("start session", err)
	}
	s.cfg.Log.LogAttrs(ctx, slog.LevelInfo, "session started",
		slog.String("event", "login"), slog.String("user_id", string(userID)), slog.String("session_id", sid))
	s.cfg.Observer.TokenIssued()
	return Pair{UserID: userID, SessionID: sid, AccessToken: access, RefreshToken: rt.raw, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// LoginFailed records a failed sign-in in the auth log: the account is
// named by a hash of its e-mail, never the address or the password.
func (s *Sessions) LoginFailed(ctx context.Context, email, reason string) {
	s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "login failed", slog.String("event", "login_failed"),
		slog.String("account", hashKey(email)), slog.String("reason", reason))
}

// Refresh rotates a refresh token: it retires the presented token and
// returns a new pair, atomically. The same token presented again within
// ReuseGrace returns the very pair already issued for it (never a second
// one), so tabs racing to refresh all keep working. Presented later, it is
// taken as stolen: the session ends, with every token of it.
//
// Returns ErrInvalidRefreshToken for an unknown, expired or ended token,
// ErrRefreshReused on theft, ErrUnavailable if Redis is down.
func (s *Sessions) Refresh(ctx context.Context, raw string) (Pair, error) {
	parent, err := parseRefreshToken(raw)
	if err != nil {
		return Pair{}, err
	}
	uid, sid := parent.userID, parent.sessionID
	child := newRefreshToken(uid, sid)
	access, claims, err := s.tokens.Issue(uid, sid)
	if err != nil {
		return Pair{}, err
	}
	pair := Pair{UserID: uid, SessionID: sid, AccessToken: access, RefreshToken: child.raw, ExpiresAt: claims.ExpiresAt.Time}
	sealed, err := sealIssued(parent, issued{AccessToken: access, RefreshToken: child.raw, ExpiresAt: pair.ExpiresAt.Unix()})
	if err != nil {
		return Pair{}, fmt.Errorf("seal token pair: %w", err)
	}
	res, err := rotateScript.Run(ctx, s.rdb,
		[]string{s.keys.refresh(uid, parent.hash()), s.keys.session(uid, sid), s.keys.refresh(uid, child.hash()), s.keys.sessions(uid)},
		s.cfg.Now().UnixMilli(), s.cfg.ReuseGrace.Milliseconds(), s.cfg.IdleTimeout.Milliseconds(),
		sealed, child.hash(), sid, parent.hash(), s.keys.refreshPrefix(uid),
	).StringSlice()
	if err != nil {
		return Pair{}, unavailable("rotate refresh token", err)
	}
	log := s.cfg.Log.With(slog.String("user_id", string(uid)), slog.String("session_id", sid))
	switch res[0] {
	case "ok":
		log.InfoContext(ctx, "refresh token rotated", slog.String("event", "refresh"))
		s.cfg.Observer.TokenIssued()
		return pair, nil
	case "grace":
		prev, err := openIssued(parent, res[1])
		if err != nil {
			return Pair{}, fmt.Errorf("reuse within grace window: %w", err)
		}
		log.InfoContext(ctx, "refresh token presented again within grace window", slog.String("event", "refresh_grace"))
		return Pair{UserID: uid, SessionID: sid, AccessToken: prev.AccessToken, RefreshToken: prev.RefreshToken,
			ExpiresAt: time.Unix(prev.ExpiresAt, 0)}, nil
	case "reuse":
		log.WarnContext(ctx, "refresh token reuse detected: session revoked", slog.String("event", "reuse_detected"))
		s.cfg.Observer.ReuseDetected()
		if err := s.rev.publish(ctx, s.sessionRevocation(uid, sid)); err != nil {
			log.ErrorContext(ctx, "publish revocation of a stolen session", slog.Any("error", err))
		}
		return Pair{}, ErrRefreshReused
	case "expired":
		log.InfoContext(ctx, "session expired", slog.String("event", "session_expired"))
		if err := s.rev.publish(ctx, s.sessionRevocation(uid, sid)); err != nil {
			log.ErrorContext(ctx, "publish revocation of an expired session", slog.Any("error", err))
		}
		return Pair{}, ErrInvalidRefreshToken
	default:
		return Pair{}, ErrInvalidRefreshToken
	}
}

// Authenticate verifies an access token and checks that neither its session
// nor the token itself has been revoked: from memory when this process's
// revocation set is synced (no Redis round trip), otherwise by asking Redis
// that the session is live and the token not blacklisted (one round trip).
//
// Returns ErrInvalidToken, ErrTokenExpired, ErrSessionRevoked, or
// ErrUnavailable if Redis had to be asked and could not be (the token is
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
	v := Viewer{UserID: uid, SessionID: c.SessionID, TokenID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time}
	if s.rev.synced() && !s.rev.predates(c.IssuedAt.Time) {
		if s.rev.isRevoked(uid, c.SessionID, c.ID) {
			return Viewer{}, ErrSessionRevoked
		}
		s.Touch(v)
		return v, nil
	}
	if err := s.checkRedis(ctx, v); err != nil {
		return Viewer{}, err
	}
	s.Touch(v)
	return v, nil
}

// checkRedis checks in one round trip that the viewer's session is live and
// its token not blacklisted.
func (s *Sessions) checkRedis(ctx context.Context, v Viewer) error {
	var live, revoked *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		live = p.Exists(ctx, s.keys.session(v.UserID, v.SessionID))
		revoked = p.Exists(ctx, s.keys.blacklist(v.UserID, v.TokenID))
		return nil
	})
	if err != nil {
		return unavailable("check session", err)
	}
	if live.Val() == 0 || revoked.Val() != 0 {
		return ErrSessionRevoked
	}
	return nil
}

// Scope says which sessions Logout ends.
type Scope int

// The scopes of Logout.
const (
	ScopeCurrent Scope = iota // the caller's session
	ScopeOthers               // every session of the caller but the current one
	ScopeAll                  // every session of the caller
)

// Logout ends sessions of the viewer. When the current session ends, the
// viewer's access token is also blacklisted until it would have expired.
// Returns the ids of the sessions ended, or ErrUnavailable.
func (s *Sessions) Logout(ctx context.Context, v Viewer, scope Scope) ([]string, error) {
	keep, only := "", ""
	switch scope {
	case ScopeCurrent:
		only = v.SessionID
	case ScopeOthers:
		keep = v.SessionID
	}
	var ttl time.Duration
	var extra []revocation
	if scope != ScopeOthers {
		ttl = s.blacklistTTL(v)
		extra = append(extra, revocation{kind: 't', user: v.UserID, id: v.TokenID, until: v.ExpiresAt.Add(s.tokens.cfg.Leeway)})
	}
	return s.end(ctx, v.UserID, keep, only, s.keys.blacklist(v.UserID, v.TokenID), ttl, "logout", extra...)
}

// Reissue replaces the token pair of the viewer's own session (after a
// password change): a new refresh token replaces the current one, which
// stops working, and the viewer's access token is blacklisted. Returns
// ErrSessionRevoked if the session has ended, or ErrUnavailable.
func (s *Sessions) Reissue(ctx context.Context, v Viewer) (Pair, error) {
	rt := newRefreshToken(v.UserID, v.SessionID)
	access, claims, err := s.tokens.Issue(v.UserID, v.SessionID)
	if err != nil {
		return Pair{}, err
	}
	if err := s.rev.publish(ctx, revocation{kind: 't', user: v.UserID, id: v.TokenID, until: v.ExpiresAt.Add(s.tokens.cfg.Leeway)}); err != nil {
		return Pair{}, err
	}
	ok, err := reissueScript.Run(ctx, s.rdb,
		[]string{s.keys.session(v.UserID, v.SessionID), s.keys.refresh(v.UserID, rt.hash()), s.keys.blacklist(v.UserID, v.TokenID)},
		s.keys.refreshPrefix(v.UserID), rt.hash(), v.SessionID, s.cfg.Now().UnixMilli(), s.blacklistTTL(v).Milliseconds(),
	).Int()
	if err != nil {
		return Pair{}, unavailable("reissue tokens", err)
	}
	if ok == 0 {
		return Pair{}, ErrSessionRevoked
	}
	s.cfg.Log.InfoContext(ctx, "session tokens reissued", slog.String("event", "reissue"),
		slog.String("user_id", string(v.UserID)), slog.String("session_id", v.SessionID))
	s.cfg.Observer.TokenIssued()
	return Pair{UserID: v.UserID, SessionID: v.SessionID, AccessToken: access, RefreshToken: rt.raw, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// sessionRevocation revokes every access token of a session: none issued
// before now outlives now + TTL (+ leeway).
func (s *Sessions) sessionRevocation(uid pulid.ID, sid string) revocation {
	return revocation{kind: 's', user: uid, id: sid, until: s.cfg.Now().Add(s.tokens.TTL() + s.tokens.cfg.Leeway)}
}

// blacklistTTL is how long a revoked access token must stay blacklisted:
// until it would expire anyway, plus the verification leeway.
func (s *Sessions) blacklistTTL(v Viewer) time.Duration {
	return max(v.ExpiresAt.Sub(s.cfg.Now())+s.tokens.cfg.Leeway, time.Second)
}

// Revoke ends one session of a user. It reports false if the user has no
// such live session. Returns ErrUnavailable if Redis is down.
func (s *Sessions) Revoke(ctx context.Context, userID pulid.ID, sessionID string) (bool, error) {
	if !validSessionID(sessionID) {
		return false, nil
	}
	ended, err := s.end(ctx, userID, "", sessionID, "", 0, "revoke")
	return len(ended) > 0, err
}

// RevokeAll ends every session of a user (password change, account lock).
func (s *Sessions) RevokeAll(ctx context.Context, userID pulid.ID, keep string) ([]string, error) {
	return s.end(ctx, userID, keep, "", "", 0, "revoke")
}

// end publishes the revocation of the sessions about to end (and of extra
// entries), then ends them. Publishing first means a failure leaves
// everything as it was; the sessions are in every process's revoked set
// before they disappear from Redis.
func (s *Sessions) end(ctx context.Context, uid pulid.ID, keep, only, blacklistKey string, ttl time.Duration, event string, extra ...revocation) ([]string, error) {
	// Only sessions in the user's own index are revoked: a session id of
	// another user names nothing here.
	sids, err := s.rdb.ZRange(ctx, s.keys.sessions(uid), 0, -1).Result()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	revs := extra
	for _, sid := range sids {
		if sid != keep && (only == "" || sid == only) {
			revs = append(revs, s.sessionRevocation(uid, sid))
		}
	}
	if err := s.rev.publish(ctx, revs...); err != nil {
		return nil, err
	}
	keys := []string{s.keys.sessions(uid)}
	if blacklistKey != "" && ttl > 0 {
		keys = append(keys, blacklistKey)
	}
	ended, err := endScript.Run(ctx, s.rdb, keys,
		s.keys.sessionPrefix(uid), s.keys.refreshPrefix(uid), keep, only, ttl.Milliseconds(),
	).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("end sessions", err)
	}
	for _, sid := range ended {
		s.cfg.Log.InfoContext(ctx, "session ended", slog.String("event", event),
			slog.String("user_id", string(uid)), slog.String("session_id", sid))
	}
	return ended, nil
}

// List returns the live sessions of a user, oldest first. Index entries of
// sessions that have expired are pruned on the way.
func (s *Sessions) List(ctx context.Context, userID pulid.ID) ([]Session, error) {
	idx := s.keys.sessions(userID)
	sids, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(sids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sid := range sids {
			cmds[i] = p.HGetAll(ctx, s.keys.session(userID, sid))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("list sessions", err)
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

func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
