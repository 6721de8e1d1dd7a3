package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/authql/authql/cache/rdb"
)

// usedCap is how many rotated tokens a session remembers for reuse
// detection: the newest 128 (32 hours of 15-minute refreshes). An older
// token presented again is merely invalid. Remembering a bounded number
// keeps a session's Redis memory bounded however often it refreshes.
const usedCap = 128

// Refresh rotates a refresh token: it retires the presented token and
// returns a new pair, atomically. The same token presented again within
// ReuseGrace, by the client that rotated it (same address prefix and user
// agent), returns the very pair already issued for it (never a second
// one), so tabs racing to refresh all keep working. Presented later, or by
// another client, it is taken as stolen: the session ends, with every token
// of it.
//
// Before Redis is asked, the ledger is: a session it ended stays ended
// whatever Redis remembers, and a session started on credentials that have
// changed since (a password change) is ended.
//
// Returns ErrInvalidRefreshToken for an unknown, expired or ended token,
// ErrRefreshReused on theft, rdb.ErrUnavailable if Redis is down.
func (s *Sessions) Refresh(ctx context.Context, raw string, meta Meta) (Pair, error) {
	parent, err := parseRefreshToken(raw)
	if err != nil {
		return Pair{}, err
	}
	uid, sid := parent.userID, parent.sessionID
	log := s.cfg.Log.With(slog.String("user_id", string(uid)), slog.String("session_id", sid))
	var version int64
	if s.cfg.Ledger != nil {
		v, ended, err := s.cfg.Ledger.state(ctx, uid, sid)
		if err != nil {
			return Pair{}, err
		}
		if ended {
			// Redis may have brought the session back (lost writes): end it
			// there again.
			if _, err := s.end(ctx, ending{user: uid, only: sid, reason: EndLedgerEnded}); err != nil {
				log.WarnContext(ctx, "end a session the ledger had ended", slog.Any("error", err))
			}
			return Pair{}, ErrInvalidRefreshToken
		}
		version = v
	}
	// The new access token says how the session signed in, as its first did.
	amr, err := s.sessionAMR(ctx, uid, sid)
	if err != nil {
		return Pair{}, err
	}
	child := newRefreshToken(uid, sid)
	access, claims, err := s.tokens.Issue(uid, sid, amr...)
	if err != nil {
		return Pair{}, err
	}
	pair := Pair{UserID: uid, SessionID: sid, AccessToken: access, RefreshToken: child.raw, ExpiresAt: claims.ExpiresAt.Time}
	sealed, err := sealIssued(parent, issued{AccessToken: access, RefreshToken: child.raw, ExpiresAt: pair.ExpiresAt.Unix()})
	if err != nil {
		return Pair{}, fmt.Errorf("seal token pair: %w", err)
	}
	hash := parent.hash()
	res, err := rotateScript.Run(ctx, s.rdb,
		[]string{s.keys.session(uid, sid), s.keys.used(uid, sid), s.keys.grace(uid, hash)},
		s.cfg.Now().UnixMilli(), s.cfg.ReuseGrace.Milliseconds(), s.cfg.IdleTimeout.Milliseconds(),
		sealed, child.hash(), hash, usedKey(hash), clientBinding(meta), version, usedCap,
	).StringSlice()
	if err != nil {
		return Pair{}, rdb.Unavailable("rotate refresh token", err)
	}
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
		// The script has already stopped the family from rotating; now the
		// session ends everywhere (published before it is deleted).
		log.WarnContext(ctx, "refresh token reuse detected: session revoked", slog.String("event", "reuse_detected"))
		s.cfg.Observer.ReuseDetected()
		if _, err := s.end(ctx, ending{user: uid, only: sid, reason: EndReuseDetected}); err != nil {
			log.ErrorContext(ctx, "end a stolen session", slog.Any("error", err))
		}
		if s.cfg.Trail != nil {
			if _, err := s.cfg.Trail.Record(ctx, nil, uid, EventRefreshReused, meta); err != nil {
				log.ErrorContext(ctx, "record refresh-token reuse", slog.Any("error", err))
			}
		}
		return Pair{}, ErrRefreshReused
	case "expired", "stale":
		reason := map[string]EndReason{"expired": EndSessionExpired, "stale": EndCredentialsChanged}[res[0]]
		log.InfoContext(ctx, "session ended at refresh", slog.String("event", string(reason)))
		if _, err := s.end(ctx, ending{user: uid, only: sid, reason: reason}); err != nil {
			log.ErrorContext(ctx, "end a session at refresh", slog.Any("error", err))
		}
		return Pair{}, ErrInvalidRefreshToken
	default:
		return Pair{}, ErrInvalidRefreshToken
	}
}

// usedKey is how a rotated token is remembered: 128 bits of its hash are
// plenty to recognise it and half the memory of the whole.
func usedKey(hash string) string { return hash[:32] }

// clientBinding identifies the client that rotated a token, for the grace
// window: a hash of its address prefix (/24 for IPv4, /56 for IPv6, so a
// client hopping between nearby addresses is still itself) and user agent.
// Tabs of one browser share it; an attacker replaying the parent from
// elsewhere within the window does not, and counts as reuse.
func clientBinding(m Meta) string {
	addr := m.IP
	if a, err := netip.ParseAddr(m.IP); err == nil {
		bits := 24
		if a.Unmap().Is6() {
			bits = 56
		}
		if p, err := a.Unmap().Prefix(bits); err == nil {
			addr = p.String()
		}
	}
	sum := sha256.Sum256([]byte(addr + "\n" + m.UserAgent))
	return hex.EncodeToString(sum[:8])
}
