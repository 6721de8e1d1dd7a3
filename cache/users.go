package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/memo"
)

// Users is the user-record tier: records in this process (while the bus
// is synced: every user write is announced on it, and the writer waits
// until every instance has dropped its copy, so a local hit is as fresh as
// Redis), then in Redis under each user's own generation counter, then
// from the database (Source.Load), written back for the next request.
// K is the ID type; V the record, whose zero value means "no such user".
type Users[K ~string, V comparable] struct {
	t   *Tiers
	src UserSource[K, V]
	// local is nil without a bus: nothing would keep it exact.
	local *memo.Map[K, V]
	// epoch moves on every eviction; a record read from Redis or the
	// database is kept locally only if no eviction happened meanwhile.
	epoch atomic.Uint64
}

// UserSource says where user records come from and how Redis keeps them.
type UserSource[K ~string, V comparable] struct {
	// Load reads records from the database: one per id, in order, the
	// zero V for a user that does not exist.
	Load func(ctx context.Context, ids []K) ([]V, error)
	// Encode is what Redis keeps of a record.
	Encode func(v V) []byte
	// Decode reads a record back; false if b is not the record of id.
	Decode func(id K, b []byte) (V, bool)
}

// NewUsers returns the user-record tier of t.
func NewUsers[K ~string, V comparable](t *Tiers, src UserSource[K, V]) *Users[K, V] {
	u := &Users[K, V]{t: t, src: src}
	if t.cfg.UserTTL > 0 {
		u.local = memo.New[K, V](10_000)
		if !t.addLocal(u) {
			u.local = nil
		}
	}
	return u
}

func (u *Users[K, V]) evict(ids []string) {
	u.epoch.Add(1)
	for _, id := range ids {
		u.local.Remove(K(id))
	}
}

func (u *Users[K, V]) purge() {
	u.epoch.Add(1)
	u.local.Purge()
}

// Cached reports whether user records are cached (the user tier is on):
// a reader that has records at hand otherwise need not go through Users.
func (u *Users[K, V]) Cached() bool { return u.t.cfg.UserTTL > 0 }

// useLocal reports whether the in-process tier can be trusted now.
func (u *Users[K, V]) useLocal() bool { return u.local != nil && u.t.synced() }

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

// Get is GetMany for one user; it allocates nothing when the in-process
// tier has the user (the viewer, on most requests).
func (u *Users[K, V]) Get(ctx context.Context, id K) (V, error) {
	if u.t.cfg.UserTTL > 0 && u.useLocal() {
		if v, ok := u.local.Get(id); ok {
			u.t.obs.Access(TierUserLocal, true)
			return v, nil
		}
	}
	vs, errs := u.GetMany(ctx, []K{id})
	if errs != nil {
		var zero V
		return zero, errs[0]
	}
	return vs[0], nil
}

// GetMany loads users by ID: cached records first (one pipelined round
// trip), the rest in one query, written back for the next request. A
// missing user loads as the zero V.
func (u *Users[K, V]) GetMany(ctx context.Context, ids []K) ([]V, []error) {
	t := u.t
	out := make([]V, len(ids))
	if t.cfg.UserTTL <= 0 {
		return u.fromDB(ctx, ids, out, nil)
	}
	local := u.useLocal()
	epoch := u.epoch.Load()
	var remote []int // positions not found locally
	for i, id := range ids {
		if local {
			// Shared between requests: callers only read users.
			v, ok := u.local.Get(id)
			t.obs.Access(TierUserLocal, ok)
			if ok {
				out[i] = v
				continue
			}
		}
		remote = append(remote, i)
	}
	if len(remote) == 0 {
		return out, nil
	}
	defer func() {
		var zero V
		if !local || u.epoch.Load() != epoch {
			return
		}
		for _, i := range remote {
			if out[i] != zero {
				u.local.Add(ids[i], out[i])
			}
		}
		// An eviction between the check and the adding moved the epoch
		// before it removed anything: it may have missed these.
		if u.epoch.Load() != epoch {
			for _, i := range remote {
				u.local.Remove(ids[i])
			}
		}
	}()
	missing, ok := u.fromRedis(ctx, ids, remote, out)
	if !ok {
		return u.fromDB(ctx, ids, out, nil)
	}
	if len(missing) == 0 {
		return out, nil
	}
	return u.fromDB(ctx, ids, out, missing)
}

// fromRedis fills the positions remote of out from Redis, and returns the
// users it did not find with the generation read for each. It reports
// false if Redis could not be read: the database answers, and nothing is
// written back.
func (u *Users[K, V]) fromRedis(ctx context.Context, ids []K, remote []int, out []V) (map[K]string, bool) {
	t := u.t
	vals := make([]*redis.StringCmd, len(ids))
	gens := make([]*redis.StringCmd, len(ids))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range remote {
			vals[i] = p.Get(ctx, t.k.user(string(ids[i])))
			gens[i] = p.Get(ctx, t.k.userGen(string(ids[i])))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		t.log.WarnContext(ctx, "user cache unavailable; reading the database", slog.Any("error", err))
		for range remote {
			t.obs.Access(TierUserRedis, false)
		}
		return nil, false
	}
	missing := map[K]string{} // id → generation read
	for _, i := range remote {
		id := ids[i]
		if b, err := vals[i].Bytes(); err == nil {
			if v, ok := u.src.Decode(id, b); ok {
				t.obs.Access(TierUserRedis, true)
				out[i] = v
				continue
			}
		}
		t.obs.Access(TierUserRedis, false)
		missing[id] = gens[i].Val()
	}
	return missing, true
}

// fromDB fills the gaps of out from the database; with gens, it writes
// what it read back to the cache.
func (u *Users[K, V]) fromDB(ctx context.Context, ids []K, out []V, gens map[K]string) ([]V, []error) {
	var zero V
	var need []K
	for i, id := range ids {
		if out[i] == zero {
			need = append(need, id)
		}
	}
	loaded, err := u.src.Load(ctx, need)
	if err != nil {
		return nil, []error{err}
	}
	for i, j := 0, 0; i < len(ids); i++ {
		if out[i] == zero {
			out[i] = loaded[j]
			j++
		}
	}
	if gens == nil {
		return out, nil
	}
	t := u.t
	ttl := t.cfg.UserTTL.Milliseconds()
	_, err = t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, id := range need {
			if loaded[j] != zero {
				key := string(id)
				setIfGen.Eval(ctx, p, []string{t.k.user(key), t.k.userGen(key)}, gens[id], u.src.Encode(loaded[j]), ttl)
			}
		}
		return nil
	})
	if err != nil {
		t.log.WarnContext(ctx, "write user cache", slog.Any("error", err))
	}
	return out, nil
}

// CountRead is what a lookup of a list's total found, and the users
// generation it read under.
type CountRead struct {
	// N is the cached total, or nil.
	N   *int
	gen int64
	// ok: Redis answered, so a total counted in the database may be
	// stored under gen.
	ok bool
}

// readUserCount reads the users generation and, under it, the count, in
// one round trip.
//
//	KEYS[1] users generation   ARGV[1], ARGV[2] seed and TTL (genArgs)
//	ARGV[3] count key prefix
//
// Returns {generation, count or false}.
var readUserCount = redis.NewScript(genLua + `
local g = gen(KEYS[1])
return {g, redis.call('GET', ARGV[3] .. g) or false}
`)

// UserCount looks the size of the users list up, under the users
// generation (every user write, a sign-up included, moves it on), so the
// table is counted once per write, not once per page. On a Redis failure
// it reports a miss, and the database answers.
func (t *Tiers) UserCount(ctx context.Context) CountRead {
	if t.cfg.PageTTL <= 0 {
		return CountRead{}
	}
	res, err := readUserCount.Run(ctx, t.rdb, []string{t.k.usersGen()}, append(t.genArgs(), t.k.userCountPrefix())...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "count cache unavailable; counting in the database", slog.Any("error", err))
		t.obs.Access(TierCount, false)
		return CountRead{}
	}
	if s, ok := res[1].(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			t.obs.Access(TierCount, true)
			return CountRead{N: &n}
		}
	}
	t.obs.Access(TierCount, false)
	return CountRead{gen: parseGen(fmt.Sprint(res[0])), ok: true}
}

// StoreUserCount caches n, counted in the database after read missed,
// under the generation read before counting: a write since then has moved
// the generation on, and this count is never read.
func (t *Tiers) StoreUserCount(ctx context.Context, read CountRead, n int) {
	if !read.ok {
		return
	}
	if err := t.rdb.Set(ctx, t.k.userCount(read.gen), n, t.cfg.PageTTL).Err(); err != nil {
		t.log.WarnContext(ctx, "write count cache", slog.Any("error", err))
	}
}
