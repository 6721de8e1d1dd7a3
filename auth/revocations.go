package auth

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// revocations keeps, in each process, the set of revoked sessions and access
// tokens that could still be presented (an access token lives 15 minutes, so
// nothing needs remembering longer than that). With it, authenticating a
// request costs a signature check and two map lookups: no Redis round trip.
//
// Every revocation is written to a Redis log (a sorted set scored by the time
// the entry stops mattering) and then sent over the bus.Bus, which returns
// once every other synced process has applied it. Each process replays the
// log whenever its bus subscription is (re)established, so nothing published
// while it was disconnected is missed; while the bus is not synced,
// Sessions.Authenticate asks Redis on every request instead.
type revocations struct {
	rdb    redis.UniversalClient
	bus    *bus.Bus
	logKey string
	now    func() time.Time
	log    *slog.Logger

	// revoked maps a revKey to when it stops mattering (time.Time). It is
	// read on every authenticated request, without a lock; mu serializes
	// the writers.
	mu      sync.Mutex
	revoked sync.Map

	// epochKey holds when Redis last started empty (UnixMilli). A Redis
	// that restarts without persistence, or is flushed, loses the log and
	// every session: tokens issued before that moment cannot be judged
	// from memory (a process that started after it never saw their
	// revocations), so until they have all expired they are checked in
	// Redis, where their sessions no longer exist.
	epochKey string
	emptyAt  atomic.Int64

	// server identifies the Redis last synced with (run and replication
	// ids); replicas is how many replicas it had, for WAIT.
	server   atomic.Value
	replicas atomic.Int64

	// watchers are notified (their channel closed) when an entry with their
	// key arrives: live connections that must end with their session.
	watchMu  sync.Mutex
	watchers map[revKey]map[*watcher]struct{}
}

type watcher struct {
	ch   chan struct{}
	fn   func() // if set, called once instead of closing ch
	once sync.Once
}

func (w *watcher) fire() {
	w.once.Do(func() {
		if w.fn != nil {
			w.fn()
			return
		}
		close(w.ch)
	})
}

// revocationTopic is the bus topic of revocations.
const revocationTopic = "rev"

// revocationKind says what a revocation ends; it is the first field of an
// entry in the Redis log and on the bus.
type revocationKind byte

const (
	revokedSession revocationKind = 's' // a session and every token of it
	revokedToken   revocationKind = 't' // one access token
)

// revocation is one entry: a session or a single access token.
type revocation struct {
	kind  revocationKind
	user  pulid.ID
	id    string
	until time.Time
}

// revKey names an entry in memory. It includes the user, so a revocation
// can only ever match that user's tokens. (A struct, not a joined string:
// looking one up allocates nothing on the request path.)
type revKey struct {
	kind revocationKind
	user pulid.ID
	id   string
}

func (r revocation) key() revKey { return revKey{r.kind, r.user, r.id} }

func (r revocation) encode() string {
	return fmt.Sprintf("%c %s %s %d", r.kind, r.user, r.id, r.until.UnixMilli())
}

func decodeRevocation(s string) (revocation, error) {
	f := strings.Fields(s)
	if len(f) != 4 || len(f[0]) != 1 {
		return revocation{}, fmt.Errorf("malformed revocation %q", s)
	}
	kind := revocationKind(f[0][0])
	if kind != revokedSession && kind != revokedToken {
		return revocation{}, fmt.Errorf("malformed revocation %q", s)
	}
	ms, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return revocation{}, fmt.Errorf("malformed revocation %q", s)
	}
	return revocation{kind: kind, user: pulid.ID(f[1]), id: f[2], until: time.UnixMilli(ms)}, nil
}

func newRevocations(rdb redis.UniversalClient, bus *bus.Bus, k keys, now func() time.Time, log *slog.Logger) *revocations {
	rv := &revocations{rdb: rdb, bus: bus, logKey: k.revocationLog(), epochKey: k.revocationEpoch(),
		now: now, log: log}
	bus.Handle(revocationTopic, func(payload string) {
		for _, e := range strings.Split(payload, ",") {
			r, err := decodeRevocation(e)
			if err != nil {
				rv.log.Warn("skip revocation message", slog.Any("error", err))
				continue
			}
			rv.apply(r)
		}
	})
	bus.OnSync(rv.checkEpoch)
	bus.OnSync(rv.checkServer)
	bus.OnSync(rv.replay)
	return rv
}

// publish makes revocations durable (the log), then tells every process
// (the bus) and waits until they have applied them. Callers publish before
// they delete anything, so a failure here leaves the session as it was and
// the client can retry, rather than half-revoked.
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
	// The log entry must exist before the event goes out (in a cluster they
	// live on different nodes, so no pipeline orders them): a process that
	// subscribes in between replays the log after its subscription is
	// confirmed, and so sees the entry if it missed the event.
	// With replicas, WAIT (on the same connection, hence the pipeline)
	// until they have the entry too, so a failover does not lose it.
	replicas := rv.replicas.Load()
	_, err := rv.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, rv.logKey, zs...)
		p.ZRemRangeByScore(ctx, rv.logKey, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		if replicas > 0 {
			p.Do(ctx, "WAIT", replicas, replicaWait.Milliseconds())
		}
		return nil
	})
	if err == nil {
		err = rv.bus.Publish(ctx, revocationTopic, strings.Join(msgs, ","))
	}
	if err != nil {
		return rdb.Unavailable("publish revocation", err)
	}
	return nil
}

func (rv *revocations) apply(rs ...revocation) {
	rv.mu.Lock()
	for _, r := range rs {
		if cur, ok := rv.revoked.Load(r.key()); !ok || r.until.After(cur.(time.Time)) {
			rv.revoked.Store(r.key(), r.until)
		}
	}
	rv.mu.Unlock()
	rv.watchMu.Lock()
	for _, r := range rs {
		for w := range rv.watchers[r.key()] {
			w.fire()
		}
	}
	rv.watchMu.Unlock()
}

// watch returns a channel closed when a revocation of the session or the
// token arrives, and a function to stop watching.
func (rv *revocations) watch(user pulid.ID, sid, jti string) (<-chan struct{}, func()) {
	w := &watcher{ch: make(chan struct{})}
	return w.ch, rv.add(w, user, sid, jti)
}

// watchFunc calls fn (once, under the watchers' lock: it must not block)
// when a revocation of the session or the token arrives; it returns a
// function to stop watching. Nothing waits: a live connection costs no
// goroutine to watch.
func (rv *revocations) watchFunc(user pulid.ID, sid, jti string, fn func()) func() {
	return rv.add(&watcher{fn: fn}, user, sid, jti)
}

func (rv *revocations) add(w *watcher, user pulid.ID, sid, jti string) func() {
	keys := []revKey{{revokedSession, user, sid}, {revokedToken, user, jti}}
	rv.watchMu.Lock()
	if rv.watchers == nil {
		rv.watchers = map[revKey]map[*watcher]struct{}{}
	}
	for _, k := range keys {
		if rv.watchers[k] == nil {
			rv.watchers[k] = map[*watcher]struct{}{}
		}
		rv.watchers[k][w] = struct{}{}
	}
	rv.watchMu.Unlock()
	return func() {
		rv.watchMu.Lock()
		for _, k := range keys {
			delete(rv.watchers[k], w)
			if len(rv.watchers[k]) == 0 {
				delete(rv.watchers, k)
			}
		}
		rv.watchMu.Unlock()
	}
}

// synced reports whether the in-memory set can be trusted right now.
func (rv *revocations) synced() bool { return rv.bus.Synced() }

// isRevoked answers from memory; only meaningful when synced.
func (rv *revocations) isRevoked(user pulid.ID, sid, jti string) bool {
	now := rv.now()
	for _, k := range [2]revKey{{revokedSession, user, sid}, {revokedToken, user, jti}} {
		if until, ok := rv.revoked.Load(k); ok && now.Before(until.(time.Time)) {
			return true
		}
	}
	return false
}

// checkEpoch learns when Redis last started empty, marking it if this is
// the first process to see it so.
func (rv *revocations) checkEpoch(ctx context.Context) error {
	if err := rv.rdb.SetNX(ctx, rv.epochKey, rv.now().UnixMilli(), 0).Err(); err != nil {
		return err
	}
	ms, err := rv.rdb.Get(ctx, rv.epochKey).Int64()
	if err != nil {
		return err
	}
	rv.emptyAt.Store(ms)
	return nil
}

// replicaWait bounds how long a revocation waits for Redis replicas.
const replicaWait = 100 * time.Millisecond

// checkServer notices that Redis is not the server this process last synced
// with: a restart or a failover, either of which may have lost writes (the
// end of sessions among them). Nothing is trusted from Redis alone on that
// account: sessions are ended in the database first, refresh asks it, and
// every resync reloads it into memory; this says so in the log, and learns
// how many replicas to WAIT for. A Redis that refuses INFO (some managed
// services) is not an error.
func (rv *revocations) checkServer(ctx context.Context) error {
	id, replicas, err := serverIdentity(ctx, rv.rdb)
	if err != nil {
		rv.log.Debug("cannot identify the Redis server", slog.Any("error", err))
		return nil
	}
	rv.replicas.Store(replicas)
	if prev, _ := rv.server.Swap(id).(string); prev != "" && prev != id {
		rv.log.Warn("Redis is not the server last synced with (restart or failover): revocations it may have lost are restored from the database",
			slog.String("event", "redis_changed"))
	}
	return nil
}

// serverIdentity returns the run and replication ids of Redis (every
// master's, for a cluster) and how many replicas a single master has (0
// for a cluster: WAIT cannot follow a pipeline across its nodes).
func serverIdentity(ctx context.Context, rdb redis.UniversalClient) (string, int64, error) {
	one := func(ctx context.Context, c *redis.Client) (string, int64, error) {
		info, err := c.Info(ctx, "server", "replication").Result()
		if err != nil {
			return "", 0, err
		}
		var runID, replID string
		var replicas int64
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			switch k {
			case "run_id":
				runID = v
			case "master_replid":
				replID = v
			case "connected_slaves":
				replicas, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return runID + "/" + replID, replicas, nil
	}
	switch c := rdb.(type) {
	case *redis.Client:
		return one(ctx, c)
	case *redis.ClusterClient:
		var mu sync.Mutex
		var ids []string
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			id, _, err := one(ctx, m)
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			return err
		})
		slices.Sort(ids)
		return strings.Join(ids, ","), 0, err
	}
	return "", 0, fmt.Errorf("unknown Redis client %T", rdb)
}

// predates reports whether a token issued at iat predates a loss of
// Redis's data, and so must be checked in Redis. iat has whole seconds: a
// token of the very second Redis started empty counts as after it.
func (rv *revocations) predates(iat time.Time) bool {
	return iat.Before(time.UnixMilli(rv.emptyAt.Load()).Truncate(time.Second))
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
	rv.revoked.Range(func(k, until any) bool {
		if !now.Before(until.(time.Time)) {
			rv.revoked.Delete(k)
		}
		return true
	})
	rv.mu.Unlock()
}
