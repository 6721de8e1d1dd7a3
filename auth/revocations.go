package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/ent/schema/pulid"
)

// Revocations keeps, in each process, the set of revoked sessions and access
// tokens that could still be presented (an access token lives 15 minutes, so
// nothing needs remembering longer than that). With it, authenticating a
// request costs a signature check and two map lookups: no Redis round trip.
//
// Every revocation is written to a Redis log (a sorted set scored by the time
// the entry stops mattering) and published on a channel. Each process
// subscribes, and on every (re)subscription replays the log, so it never
// misses an entry: messages published while it was disconnected are in the
// log. Until the subscription is confirmed and the log replayed, and whenever
// the subscription stops answering pings, the process is "not synced" and
// Sessions.Authenticate falls back to asking Redis on every request. A
// revocation therefore reaches every process as fast as Redis delivers a
// message (well under a millisecond on a LAN), and a process that could have
// missed one does not trust its memory.
type revocations struct {
	rdb     redis.UniversalClient
	channel string
	logKey  string
	now     func() time.Time
	log     *slog.Logger

	mu      sync.RWMutex
	revoked map[string]time.Time // "s:<uid>:<sid>" or "t:<uid>:<jti>" → when it stops mattering

	// alive is when the subscription was last known complete, in UnixNano
	// (0: not synced). It is the send time of the last answered ping: every
	// message published before that ping reached Redis has been applied.
	alive atomic.Int64
}

// Ping cadence of the subscription and how stale its last answer may be
// before the process stops trusting its memory.
const (
	pingEvery    = 100 * time.Millisecond
	maxStaleness = 500 * time.Millisecond
)

// revocation is one entry: a session or a single access token.
type revocation struct {
	kind  byte // 's' session, 't' token
	user  pulid.ID
	id    string
	until time.Time
}

// key names the entry in memory. It includes the user, so a revocation can
// only ever match that user's tokens.
func (r revocation) key() string { return revocationKey(r.kind, r.user, r.id) }

func revocationKey(kind byte, user pulid.ID, id string) string {
	return string(kind) + ":" + string(user) + ":" + id
}

func (r revocation) encode() string {
	return fmt.Sprintf("%c %s %s %d", r.kind, r.user, r.id, r.until.UnixMilli())
}

func decodeRevocation(s string) (revocation, error) {
	f := strings.Fields(s)
	if len(f) != 4 || len(f[0]) != 1 || (f[0][0] != 's' && f[0][0] != 't') {
		return revocation{}, fmt.Errorf("malformed revocation %q", s)
	}
	ms, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return revocation{}, fmt.Errorf("malformed revocation %q", s)
	}
	return revocation{kind: f[0][0], user: pulid.ID(f[1]), id: f[2], until: time.UnixMilli(ms)}, nil
}

func newRevocations(rdb redis.UniversalClient, k keys, now func() time.Time, log *slog.Logger) *revocations {
	return &revocations{
		rdb: rdb, channel: k.revocationChannel(), logKey: k.revocationLog(),
		now: now, log: log, revoked: map[string]time.Time{},
	}
}

// publish makes revocations durable (the log) and tells every process (the
// channel), applying them locally at once. Callers publish before they
// delete anything, so a failure here leaves the session as it was and the
// client can retry, rather than half-revoked.
func (rv *revocations) publish(ctx context.Context, rs ...revocation) error {
	if len(rs) == 0 {
		return nil
	}
	now := rv.now()
	zs := make([]redis.Z, len(rs))
	msgs := make([]string, len(rs))
	for i, r := range rs {
		msgs[i] = r.encode()
		zs[i] = redis.Z{Score: float64(r.until.UnixMilli()), Member: msgs[i]}
	}
	// The log entry must exist before the message goes out (in a cluster
	// they live on different nodes, so no pipeline orders them): a process
	// that subscribes in between replays the log after its subscription is
	// confirmed, and so sees the entry if it missed the message.
	_, err := rv.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, rv.logKey, zs...)
		p.ZRemRangeByScore(ctx, rv.logKey, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		return nil
	})
	if err == nil {
		err = rv.rdb.Publish(ctx, rv.channel, strings.Join(msgs, "\n")).Err()
	}
	if err != nil {
		return unavailable("publish revocation", err)
	}
	rv.apply(rs...)
	return nil
}

func (rv *revocations) apply(rs ...revocation) {
	rv.mu.Lock()
	for _, r := range rs {
		if cur, ok := rv.revoked[r.key()]; !ok || r.until.After(cur) {
			rv.revoked[r.key()] = r.until
		}
	}
	rv.mu.Unlock()
}

// synced reports whether the in-memory set can be trusted right now.
func (rv *revocations) synced() bool {
	a := rv.alive.Load()
	return a != 0 && time.Since(time.Unix(0, a)) < maxStaleness
}

// isRevoked answers from memory; only meaningful when synced.
func (rv *revocations) isRevoked(user pulid.ID, sid, jti string) bool {
	now := rv.now()
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	for _, k := range [2]string{revocationKey('s', user, sid), revocationKey('t', user, jti)} {
		if until, ok := rv.revoked[k]; ok && now.Before(until) {
			return true
		}
	}
	return false
}

// replay loads every entry of the log that still matters.
func (rv *revocations) replay(ctx context.Context) error {
	entries, err := rv.rdb.ZRangeByScore(ctx, rv.logKey, &redis.ZRangeBy{
		Min: strconv.FormatInt(rv.now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return err
	}
	rs := make([]revocation, 0, len(entries))
	for _, e := range entries {
		r, err := decodeRevocation(e)
		if err != nil {
			rv.log.Warn("skip revocation log entry", slog.Any("error", err))
			continue
		}
		rs = append(rs, r)
	}
	rv.apply(rs...)
	return nil
}

// prune forgets entries that no longer matter.
func (rv *revocations) prune() {
	now := rv.now()
	rv.mu.Lock()
	for k, until := range rv.revoked {
		if !now.Before(until) {
			delete(rv.revoked, k)
		}
	}
	rv.mu.Unlock()
}

// run keeps the subscription until ctx ends. go-redis reconnects a broken
// subscription by itself and resubscribes; every (re)subscription is
// confirmed by a subscribe message, on which the log is replayed.
func (rv *revocations) run(ctx context.Context) {
	ps := rv.rdb.Subscribe(ctx, rv.channel)
	defer ps.Close()
	defer rv.alive.Store(0)

	// Pings go out on the subscription's own connection, so their answers
	// come back in order with the messages.
	go func() {
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = ps.Ping(ctx, strconv.FormatInt(time.Now().UnixNano(), 10))
			}
		}
	}()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	replayed := false
	for ctx.Err() == nil {
		select {
		case <-prune.C:
			rv.prune()
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				continue // staleness is judged by the pings
			}
			if rv.alive.Swap(0) != 0 || replayed {
				rv.log.Warn("revocation subscription lost: checking sessions in Redis per request until it is back", slog.Any("error", err))
			}
			replayed = false
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			sent := time.Now()
			if err := rv.replay(ctx); err != nil {
				rv.log.Warn("replay revocation log", slog.Any("error", err))
				continue // stay unsynced; the pings will not mark us alive
			}
			replayed = true
			rv.alive.Store(sent.UnixNano())
			rv.log.Debug("revocations synced")
		case *redis.Message:
			for _, line := range strings.Split(m.Payload, "\n") {
				r, err := decodeRevocation(line)
				if err != nil {
					rv.log.Warn("skip revocation message", slog.Any("error", err))
					continue
				}
				rv.apply(r)
			}
		case *redis.Pong:
			if !replayed {
				continue
			}
			if ns, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && ns > rv.alive.Load() {
				rv.alive.Store(ns)
			}
		}
	}
}
