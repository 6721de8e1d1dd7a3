package auth

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// endTimeout bounds a revocation sequence. It runs to the end even if the
// request that started it is cancelled (a client that disconnects during a
// logout must not leave its session revoked here and alive in Redis).
const endTimeout = 10 * time.Second

// Scope says which sessions Logout ends.
type Scope int

// The scopes of Logout.
const (
	ScopeCurrent Scope = iota // the caller's session
	ScopeOthers               // every session of the caller but the current one
	ScopeAll                  // every session of the caller
)

// EndReason says why sessions ended; the auth log records it as the
// "event" of "session ended".
type EndReason string

// The reasons sessions end.
const (
	EndLogout          EndReason = "logout"           // Logout
	EndRevoked         EndReason = "revoke"           // Revoke: one session, by its user
	EndPasswordChanged EndReason = "password_changed" // EndAll after a password change
	EndPasswordReset   EndReason = "password_reset"   // EndAll after a reset by a mailed link
	EndSessionLimit    EndReason = "session_limit"    // the oldest, past MaxSessions
	EndReuseDetected   EndReason = "reuse_detected"   // a rotated refresh token presented again
	// EndLedgerEnded: a refresh named a session the ledger had ended but
	// Redis still held (lost writes).
	EndLedgerEnded        EndReason = "ended_session_refreshed"
	EndSessionExpired     EndReason = "session_expired"     // found past its lifetime at refresh
	EndCredentialsChanged EndReason = "credentials_changed" // its credentials version is stale
)

// Logout ends sessions of the viewer. When the current session ends, the
// viewer's access token is also blacklisted until it would have expired.
// Signing out everywhere also bumps the user's credentials version, so a
// session being started at that very moment dies too. Returns the ids of
// the sessions ended, or rdb.ErrUnavailable.
func (s *Sessions) Logout(ctx context.Context, v Viewer, scope Scope) ([]string, error) {
	e := ending{user: v.UserID, reason: EndLogout}
	switch scope {
	case ScopeCurrent:
		e.only, e.token = v.SessionID, &v
	case ScopeOthers:
		e.keep = v.SessionID
	case ScopeAll:
		e.token, e.bump = &v, true
	}
	return s.end(ctx, e)
}

// Revoke ends one session of a user. It reports false if the user has no
// such live session. Returns rdb.ErrUnavailable if Redis is down.
func (s *Sessions) Revoke(ctx context.Context, userID pulid.ID, sessionID string) (bool, error) {
	if !validSessionID(sessionID) {
		return false, nil
	}
	ended, err := s.end(ctx, ending{user: userID, only: sessionID, reason: EndRevoked})
	return len(ended) > 0, err
}

// IDs returns the ids of the user's sessions, for a caller that records
// their end in its own transaction (Ledger.Record) before EndAll.
func (s *Sessions) IDs(ctx context.Context, userID pulid.ID) ([]string, error) {
	sids, err := s.rdb.ZRange(ctx, s.keys.sessions(userID), 0, -1).Result()
	if err != nil {
		return nil, rdb.Unavailable("list sessions", err)
	}
	return sids, nil
}

// EndAll ends every session of a user, everywhere (after a password
// change). recorded lists the sessions whose end the caller has already
// written to the ledger, in the transaction that changed the credentials.
func (s *Sessions) EndAll(ctx context.Context, userID pulid.ID, reason EndReason, recorded []string) error {
	_, err := s.end(ctx, ending{user: userID, reason: reason, recorded: recorded})
	return err
}

// Ledger returns the durable record of ended sessions.
func (s *Sessions) Ledger() *Ledger { return s.cfg.Ledger }

// ending says which sessions of a user end, and how.
type ending struct {
	user pulid.ID
	keep string // a session to keep ("" for none)
	only string // the one session to end ("" for all but keep)
	// token, if set, is the caller's access token, blacklisted too.
	token *Viewer
	// bump raises the user's credentials version (sign out everywhere).
	bump   bool
	reason EndReason
	// recorded are sessions already written to the ledger.
	recorded []string
}

// end ends sessions, in an order that loses nothing whatever fails or
// whoever disconnects: the ledger first (durable), then the revocation log
// and every process's memory (published, acknowledged), and only then the
// sessions in Redis. A session the delete finds that was not listed
// (started meanwhile) is revoked the same way after it. Returns the ids of
// the sessions that were live and are now ended.
func (s *Sessions) end(ctx context.Context, e ending) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	// Only sessions in the user's own index are revoked: a session id of
	// another user names nothing here.
	all, err := s.IDs(ctx, e.user)
	if err != nil {
		return nil, err
	}
	var sids []string
	for _, sid := range all {
		if sid != e.keep && (e.only == "" || sid == e.only) {
			sids = append(sids, sid)
		}
	}
	var extra []revocation
	if e.token != nil {
		extra = append(extra, revocation{kind: revokedToken, user: e.user, id: e.token.TokenID, until: e.token.ExpiresAt.Add(s.tokens.cfg.Leeway)})
	}
	if e.bump && s.cfg.Ledger != nil {
		if err := s.cfg.Ledger.bump(ctx, e.user); err != nil {
			return nil, err
		}
	}
	if err := s.revoke(ctx, e, sids, extra...); err != nil {
		return nil, err
	}
	keys := []string{s.keys.sessions(e.user)}
	var ttl time.Duration
	if e.token != nil {
		keys = append(keys, s.keys.blacklist(e.user, e.token.TokenID))
		ttl = max(e.token.ExpiresAt.Sub(s.cfg.Now())+s.tokens.cfg.Leeway, time.Second)
	}
	ended, err := endScript.Run(ctx, s.rdb, keys,
		s.keys.sessionPrefix(e.user), s.keys.usedPrefix(e.user), e.keep, e.only, ttl.Milliseconds(),
	).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, rdb.Unavailable("end sessions", err)
	}
	var late []string
	for _, sid := range ended {
		if !slices.Contains(sids, sid) {
			late = append(late, sid)
		}
	}
	if err := s.revoke(ctx, e, late); err != nil {
		return nil, err
	}
	for _, sid := range ended {
		s.cfg.Log.InfoContext(ctx, "session ended", slog.String("event", string(e.reason)),
			slog.String("user_id", string(e.user)), slog.String("session_id", sid))
	}
	return ended, nil
}

// revoke records the end of sessions in the ledger (unless the caller did)
// and publishes their revocation, with the extra entries.
func (s *Sessions) revoke(ctx context.Context, e ending, sids []string, extra ...revocation) error {
	if s.cfg.Ledger != nil {
		var todo []string
		for _, sid := range sids {
			if !slices.Contains(e.recorded, sid) {
				todo = append(todo, sid)
			}
		}
		if err := s.cfg.Ledger.Record(ctx, nil, e.user, todo, s.cfg.Now()); err != nil {
			return err
		}
	}
	revs := extra
	for _, sid := range sids {
		revs = append(revs, s.sessionRevocation(e.user, sid))
	}
	return s.rev.publish(ctx, revs...)
}

// endOldest ends the oldest sessions of a user beyond the cap, never the
// one just started.
func (s *Sessions) endOldest(ctx context.Context, uid pulid.ID, newest string, n int) {
	sids, err := s.rdb.ZRange(ctx, s.keys.sessions(uid), 0, int64(n)).Result()
	if err != nil {
		s.cfg.Log.WarnContext(ctx, "list sessions beyond the cap", slog.Any("error", err))
		return
	}
	for _, sid := range sids {
		if n == 0 {
			break
		}
		if sid == newest {
			continue
		}
		n--
		if _, err := s.end(ctx, ending{user: uid, only: sid, reason: EndSessionLimit}); err != nil {
			s.cfg.Log.WarnContext(ctx, "end a session beyond the cap", slog.Any("error", err))
		}
	}
}

// discard deletes a session none of whose tokens was handed out.
func (s *Sessions) discard(ctx context.Context, uid pulid.ID, sid string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	err := endScript.Run(ctx, s.rdb, []string{s.keys.sessions(uid)},
		s.keys.sessionPrefix(uid), s.keys.usedPrefix(uid), "", sid, 0).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return rdb.Unavailable("discard session", err)
	}
	return nil
}

// sessionRevocation revokes every access token of a session: none issued
// before now outlives now + TTL (+ leeway).
func (s *Sessions) sessionRevocation(uid pulid.ID, sid string) revocation {
	return revocation{kind: revokedSession, user: uid, id: sid, until: s.cfg.Now().Add(s.revocationLife())}
}
