// Package cache holds the cache tiers kept in Redis, the bus and the
// per-request dataloaders.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/memo"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// TierConfig configures the cache tiers (DESIGN.md: users 1 h, post lists
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

// DefaultTierConfig is the design's TTLs.
var DefaultTierConfig = TierConfig{UserTTL: time.Hour, PageTTL: 5 * time.Minute, ResponseTTL: time.Minute}

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
	rdb    redis.UniversalClient
	client *ent.Client
	k      keys
	cfg    TierConfig
	// genTTL is how long a generation counter lives after its last bump.
	genTTL time.Duration
	log    *slog.Logger
	obs    Observer

	// local holds user records in this process, in front of Redis. It is
	// used only while the bus is synced: every user write is announced on
	// the bus, and the writer waits until every instance has dropped its
	// copy, so a local hit is as fresh as Redis.
	bus   *bus.Bus
	local *memo.Map[pulid.ID, *ent.User]
	// epoch moves on every eviction; a record read from Redis or the
	// database is kept locally only if no eviction happened meanwhile.
	epoch atomic.Uint64
}

// userTopic is the bus topic of user invalidations.
const userTopic = "user"

// NewTiers returns the cache tiers over rdb, reading through client, with
// an in-process tier for user records kept exact by bus (nil: none).
func NewTiers(rdb redis.UniversalClient, client *ent.Client, bus *bus.Bus, cfg TierConfig) *Tiers {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	obs := cfg.Observer
	if obs == nil {
		obs = NopObserver{}
	}
	t := &Tiers{rdb: rdb, client: client, k: keys{cfg.Prefix}, cfg: cfg, log: log, obs: obs, bus: bus,
		genTTL: max(24*time.Hour, cfg.PageTTL, cfg.ResponseTTL) + time.Minute}
	if bus != nil && cfg.UserTTL > 0 {
		t.local = memo.New[pulid.ID, *ent.User](10_000)
		bus.Handle(userTopic, func(payload string) {
			t.epoch.Add(1)
			for _, id := range strings.Split(payload, ",") {
				t.local.Remove(pulid.ID(id))
			}
		})
		bus.OnSync(func(context.Context) error {
			// Evictions may have been missed while disconnected.
			t.epoch.Add(1)
			t.local.Purge()
			return nil
		})
	}
	return t
}

// useLocal reports whether the in-process tier can be trusted now.
func (t *Tiers) useLocal() bool { return t.local != nil && t.bus.Synced() }

// cachedUser is the cached form of a user: the profile, never the password
// hash.
type cachedUser struct {
	ID        pulid.ID  `json:"id"`
	Email     string    `json:"e"`
	Name      string    `json:"n"`
	Role      user.Role `json:"r"`
	CreatedAt time.Time `json:"c"`
	UpdatedAt time.Time `json:"u"`
}

func toCachedUser(u *ent.User) cachedUser {
	return cachedUser{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// entity returns an *ent.User without its password hash. Resolvers read
// its fields; none calls its query methods (it has no client).
func (c cachedUser) entity() *ent.User {
	return &ent.User{ID: c.ID, Email: c.Email, Name: c.Name, Role: c.Role, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// setIfGen stores a value only if the generation counter still reads what
// it did before the database was read.
//
//	KEYS[1] value   KEYS[2] generation   ARGV[1] generation read ('' for none)
//	ARGV[2] value   ARGV[3] TTL (ms)
var setIfGen = redis.NewScript(`
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// User is Users for one user; it allocates nothing when the in-process
// tier has the user (the viewer, on most requests).
func (t *Tiers) User(ctx context.Context, id pulid.ID) (*ent.User, error) {
	if t.cfg.UserTTL > 0 && t.useLocal() {
		if u, ok := t.local.Get(id); ok {
			t.obs.Access(TierUserLocal, true)
			return u, nil
		}
	}
	us, errs := t.Users(ctx, []pulid.ID{id})
	if errs != nil {
		return nil, errs[0]
	}
	return us[0], nil
}

// Users loads users by ID: cached records first (one pipelined round trip),
// the rest in one query, written back for the next request. A missing user
// loads as nil.
func (t *Tiers) Users(ctx context.Context, ids []pulid.ID) ([]*ent.User, []error) {
	out := make([]*ent.User, len(ids))
	if t.cfg.UserTTL <= 0 {
		return t.usersFromDB(ctx, ids, out, nil)
	}
	local := t.useLocal()
	epoch := t.epoch.Load()
	var remote []int // positions not found locally
	for i, id := range ids {
		if local {
			// Shared between requests: callers only read users.
			u, ok := t.local.Get(id)
			t.obs.Access(TierUserLocal, ok)
			if ok {
				out[i] = u
				continue
			}
		}
		remote = append(remote, i)
	}
	if len(remote) == 0 {
		return out, nil
	}
	defer func() {
		if local && t.epoch.Load() == epoch {
			for _, i := range remote {
				if out[i] != nil {
					t.local.Add(ids[i], out[i])
				}
			}
		}
	}()
	vals := make([]*redis.StringCmd, len(ids))
	gens := make([]*redis.StringCmd, len(ids))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range remote {
			vals[i] = p.Get(ctx, t.k.user(ids[i]))
			gens[i] = p.Get(ctx, t.k.userGen(ids[i]))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		t.log.WarnContext(ctx, "user cache unavailable; reading the database", slog.Any("error", err))
		for range remote {
			t.obs.Access(TierUserRedis, false)
		}
		return t.usersFromDB(ctx, ids, out, nil)
	}
	missing := map[pulid.ID]string{} // id → generation read
	for _, i := range remote {
		id := ids[i]
		var c cachedUser
		if b, err := vals[i].Bytes(); err == nil && json.Unmarshal(b, &c) == nil && c.ID == id {
			t.obs.Access(TierUserRedis, true)
			out[i] = c.entity()
			continue
		}
		t.obs.Access(TierUserRedis, false)
		missing[id] = gens[i].Val()
	}
	if len(missing) == 0 {
		return out, nil
	}
	return t.usersFromDB(ctx, ids, out, missing)
}

// usersFromDB fills the gaps of out from the database; with gens, it writes
// what it read back to the cache.
func (t *Tiers) usersFromDB(ctx context.Context, ids []pulid.ID, out []*ent.User, gens map[pulid.ID]string) ([]*ent.User, []error) {
	var need []pulid.ID
	for i, id := range ids {
		if out[i] == nil {
			need = append(need, id)
		}
	}
	users, err := t.client.User.Query().Where(user.IDIn(need...)).Select(userColumns...).All(ctx)
	if err != nil {
		return nil, []error{err}
	}
	byID := make(map[pulid.ID]*ent.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	for i, id := range ids {
		if out[i] == nil {
			if u := byID[id]; u != nil {
				out[i] = toCachedUser(u).entity() // the same shape as a hit: no password hash
			}
		}
	}
	if gens != nil && len(users) > 0 {
		ttl := t.cfg.UserTTL.Milliseconds()
		_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				b, _ := json.Marshal(toCachedUser(u))
				setIfGen.Eval(ctx, p, []string{t.k.user(u.ID), t.k.userGen(u.ID)}, gens[u.ID], b, ttl)
			}
			return nil
		})
		if err != nil {
			t.log.WarnContext(ctx, "write user cache", slog.Any("error", err))
		}
	}
	return out, nil
}

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
// Cached responses depend on users too, and move on with them.
func (t *Tiers) InvalidateUsers(ctx context.Context, ids ...pulid.ID) error {
	if err := t.invalidateUsers(ctx, ids...); err != nil {
		return err
	}
	return nil
}

// UsersWritten is InvalidateUsers once the write has committed: it also
// has every process drop its in-process copy, and returns when they have.
func (t *Tiers) UsersWritten(ctx context.Context, ids ...pulid.ID) error {
	if err := t.invalidateUsers(ctx, ids...); err != nil {
		return err
	}
	if t.local == nil {
		return nil
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return t.bus.Publish(ctx, userTopic, strings.Join(s, ","))
}

func (t *Tiers) invalidateUsers(ctx context.Context, ids ...pulid.ID) error {
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

// InvalidatePosts is called on every write of posts, like InvalidateUsers:
// every cached page, count and response built on the old generation is
// unreachable from then on (and expires).
func (t *Tiers) InvalidatePosts(ctx context.Context) error {
	if err := bumpGen.Run(ctx, t.rdb, []string{t.k.postsGen()}, t.genArgs()...).Err(); err != nil {
		return rdb.Unavailable("invalidate post cache", err)
	}
	return nil
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
