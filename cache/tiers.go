// Package cache keeps the shared caches in Redis in front of the database:
// entries stored under generation counters, so that a write makes every
// entry built before it unreachable (Tiers: user records, pages of lists
// and their totals, whole responses), the persisted-query store, and the
// in-process cache bounded by bytes (Weighted).
//
// It stores what it is given and knows no entity: graph/store says what
// a page or a user record is and reads the database on a miss. It imports
// cache/bus, cache/memo and cache/rdb, never ent or graph.
package cache

import (
	"context"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/rdb"
)

// TierConfig configures the cache tiers (the design's: users 1 h, post lists
// 5 min, responses 1 min). A zero TTL turns a tier off.
type TierConfig struct {
	Prefix      string
	UserTTL     time.Duration
	PageTTL     time.Duration
	ResponseTTL time.Duration
	Log         *slog.Logger
	// Observer counts hits and misses per tier; nil: none.
	Observer Observer
}

// DefaultTierConfig returns the design's TTLs.
func DefaultTierConfig() TierConfig {
	return TierConfig{UserTTL: time.Hour, PageTTL: 5 * time.Minute, ResponseTTL: time.Minute}
}

// Tiers are the shared caches in Redis, in front of the database. Every
// instance reads and invalidates the same entries, so a write on one
// instance is seen by the next read on any instance.
//
// Invalidation is exact, by generation counters: a list page or a response
// is stored under the generation of the data it was built from, and a write
// bumps the generation before the mutation returns, so no later read can
// find an entry built before the write. A user record has its own counter
// and is written back only if the counter did not move while it was read
// from the database (a racing write cannot be overwritten by stale data).
//
// The cache never fails a request: if Redis cannot be read, the database
// answers.
type Tiers struct {
	rdb redis.UniversalClient
	k   keys
	cfg TierConfig
	// genTTL is how long a generation counter lives after its last bump.
	genTTL time.Duration
	log    *slog.Logger
	obs    Observer

	// bus announces writes to every process, whose in-process tiers
	// (Users, in locals, and responses) drop their copies; nil: no
	// in-process tier.
	bus      *bus.Bus
	localsMu sync.Mutex
	locals   []localTier
	// responses is the response tier's copy in this process; nil without
	// a bus or without the response tier.
	responses *localResponses
}

// localTier is an in-process copy of what Redis caches, which the bus
// keeps exact.
type localTier interface {
	// evict forgets the users of ids, and anything built from them.
	evict(ids []string)
	// purge forgets everything: evictions may have been missed.
	purge()
}

// The bus topics of invalidations: userTopic carries the ids of users
// written (an update: their records and every response are stale);
// responsesTopic says that every response is stale (posts written, a user
// created).
const (
	userTopic      = "user"
	responsesTopic = "responses"
)

// NewTiers returns the cache tiers over rdb, with in-process tiers for
// user records kept exact by bus (nil: none).
func NewTiers(rdb redis.UniversalClient, bus *bus.Bus, cfg TierConfig) *Tiers {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	obs := cfg.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	t := &Tiers{rdb: rdb, k: keys{cfg.Prefix}, cfg: cfg, log: log, obs: obs,
		genTTL: max(24*time.Hour, cfg.PageTTL, cfg.ResponseTTL) + time.Minute}
	// Writes are announced whenever there is a bus, even by a process
	// that keeps nothing in memory: its peers may.
	if bus != nil {
		t.bus = bus
		if cfg.ResponseTTL > 0 {
			t.responses = newLocalResponses(cfg.ResponseTTL)
			t.addLocal(t.responses)
		}
		bus.Handle(userTopic, func(payload string) {
			ids := strings.Split(payload, ",")
			for _, l := range t.localTiers() {
				l.evict(ids)
			}
		})
		bus.Handle(responsesTopic, func(string) {
			if t.responses != nil {
				t.responses.purge()
			}
		})
		bus.OnSync(func(context.Context) error {
			// Evictions may have been missed while disconnected.
			for _, l := range t.localTiers() {
				l.purge()
			}
			return nil
		})
	}
	return t
}

// addLocal registers an in-process user tier with the bus's evictions.
// It reports false if there is no bus: the tier must not be kept.
func (t *Tiers) addLocal(l localTier) bool {
	if t.bus == nil {
		return false
	}
	t.localsMu.Lock()
	t.locals = append(t.locals, l)
	t.localsMu.Unlock()
	return true
}

func (t *Tiers) localTiers() []localTier {
	t.localsMu.Lock()
	defer t.localsMu.Unlock()
	return t.locals
}

// synced reports whether in-process tiers can be trusted now.
func (t *Tiers) synced() bool { return t.bus.Synced() }

// invalidateUser drops a user's record and moves the counters on.
//
//	KEYS[1] value   KEYS[2] the user's generation
var invalidateUser = redis.NewScript(`
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
`)

// InvalidateUsers is called on every write of users: inside the write's
// transaction (so a failure aborts the write) and again once it committed
// (so a read that raced the commit cannot leave a stale record behind).
// Cached responses depend on users too, and move on with them. Returns
// rdb.ErrUnavailable if Redis cannot be told.
func (t *Tiers) InvalidateUsers(ctx context.Context, ids ...string) error {
	ttl := (t.cfg.UserTTL + time.Minute).Milliseconds()
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			invalidateUser.Eval(ctx, p, []string{t.k.user(id), t.k.userGen(id)}, ttl)
		}
		bumpGen.Eval(ctx, p, []string{t.k.usersGen()}, t.genArgs()...)
		return nil
	})
	if err != nil {
		return rdb.Unavailable("invalidate user cache", err)
	}
	return nil
}

// UsersWritten is InvalidateUsers once the write has committed: it also
// has every process drop its in-process copy, and returns when they have.
// The processes drop their copies even if Redis could not be told (the
// error is returned, for the write's outbox to try again): they then ask
// Redis, and the database while Redis is away, not their memory.
func (t *Tiers) UsersWritten(ctx context.Context, ids ...string) error {
	err := t.InvalidateUsers(ctx, ids...)
	if t.bus != nil {
		err = errors.Join(err, t.bus.Publish(ctx, userTopic, strings.Join(ids, ",")))
	}
	return err
}

// InvalidatePosts is called on every write of posts, like InvalidateUsers:
// every cached page, count and response built on the old generation is
// unreachable from then on (and expires). Returns rdb.ErrUnavailable if
// Redis cannot be told.
func (t *Tiers) InvalidatePosts(ctx context.Context) error {
	if err := bumpGen.Run(ctx, t.rdb, []string{t.k.postsGen()}, t.genArgs()...).Err(); err != nil {
		return rdb.Unavailable("invalidate post cache", err)
	}
	return nil
}

// PostsWritten is InvalidatePosts once the write has committed: it also
// has every process drop the responses it holds, and returns when they
// have (even if Redis could not be told, as UsersWritten).
func (t *Tiers) PostsWritten(ctx context.Context) error {
	return errors.Join(t.InvalidatePosts(ctx), t.responsesStale(ctx))
}

// UsersCreated is InvalidateUsers once the creation of users has
// committed: no process holds their records, but every response built
// before (a list of users, a count) is stale, and every process drops
// the responses it holds (even if Redis could not be told, as
// UsersWritten).
func (t *Tiers) UsersCreated(ctx context.Context, ids ...string) error {
	return errors.Join(t.InvalidateUsers(ctx, ids...), t.responsesStale(ctx))
}

// responsesStale has every process drop the responses it holds, and
// returns when they have.
func (t *Tiers) responsesStale(ctx context.Context) error {
	if t.bus == nil {
		return nil
	}
	return t.bus.Publish(ctx, responsesTopic, "-")
}

// Generation counters (the users and posts generations) carry a TTL like
// every cache key, and may also be evicted (the cache Redis runs
// allkeys-lru). A counter that vanished must never come back with a value
// it had while entries stored under that value may still live: counting
// again from 0 would make pages built before a write current again. So a
// missing counter restarts at a random 52-bit value (genSeed), whether a
// reader or a writer finds it missing; the chance that it lands within a
// few thousand of the value it lost is negligible (about 2^-40).
//
// genLua is the reading half, shared by the read scripts:
//
//	gen(key, ARGV[1] seed, ARGV[2] TTL ms) returns the counter, starting it
//	at seed if it is missing.
const genLua = `
local function gen(key)
  local g = redis.call('GET', key)
  if not g then
    g = ARGV[1]
    redis.call('SET', key, g, 'PX', ARGV[2])
  end
  return g
end
`

// bumpGen moves a generation counter on, or restarts it at a seed, and
// gives it its TTL again.
//
//	KEYS[1] generation   ARGV[1] seed   ARGV[2] TTL (ms)
var bumpGen = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// genArgs are ARGV[1] and ARGV[2] of the scripts that read or bump a
// generation: a fresh seed and the counters' TTL.
func (t *Tiers) genArgs() []any {
	return []any{mrand.Int64N(1 << 52), t.genTTL.Milliseconds()}
}

func parseGen(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
