package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// readResponse reads both generations and, under them, a response, in one
// round trip.
//
//	KEYS[1] users generation   KEYS[2] posts generation
//	ARGV[1], ARGV[2] seed and TTL (genArgs)   ARGV[3] response key prefix   ARGV[4] hash
var readResponse = redis.NewScript(genLua + `
local u = gen(KEYS[1])
local p = gen(KEYS[2])
return {u, p, redis.call('GET', ARGV[3] .. u .. ':' .. p .. ':' .. ARGV[4]) or false}
`)

// ResponseEntry is a response cache lookup: the generations it was made
// under, and the cached JSON if there was one.
type ResponseEntry struct {
	usersGen, postsGen int64
	Data               []byte
	ok                 bool
	// epoch is the local copy's epoch before Redis was read; local, that
	// the local copy may keep what the lookup finds or stores.
	epoch uint64
	local bool
}

// Response looks up a whole response (the design's 1-minute tier): in
// this process while the bus is synced, then in Redis. The hash must
// cover the operation, its variables and the viewer's scope. A response
// depends on users and posts, so it is stored under both generations: any
// write of either makes it unreachable in Redis, and every process drops
// its copies before the write returns (PostsWritten, UsersWritten,
// UsersCreated).
func (t *Tiers) Response(ctx context.Context, hash string) ResponseEntry {
	if t.cfg.ResponseTTL <= 0 {
		return ResponseEntry{}
	}
	var e ResponseEntry
	if t.responses != nil && t.synced() {
		e.local, e.epoch = true, t.responses.epoch.Load()
		data, ok := t.responses.m.Get(ctx, hash)
		t.obs.Access(TierResponseLocal, ok)
		if ok {
			return ResponseEntry{Data: data}
		}
	}
	res, err := readResponse.Run(ctx, t.rdb, []string{t.k.usersGen(), t.k.postsGen()}, append(t.genArgs(), t.k.responsePrefix(), hash)...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "response cache unavailable", slog.Any("error", err))
		t.obs.Access(TierResponse, false)
		return ResponseEntry{}
	}
	e.usersGen, e.postsGen, e.ok = parseGen(fmt.Sprint(res[0])), parseGen(fmt.Sprint(res[1])), true
	if s, ok := res[2].(string); ok {
		e.Data = []byte(s)
		t.keepLocal(ctx, e, hash, e.Data)
	}
	t.obs.Access(TierResponse, e.Data != nil)
	return e
}

// StoreResponse caches data under the generations the lookup read, before
// the operation ran: if a write happened meanwhile, the entry is already
// unreachable.
func (t *Tiers) StoreResponse(ctx context.Context, e ResponseEntry, hash string, data []byte) {
	if !e.ok {
		return
	}
	if err := t.rdb.Set(ctx, t.k.response(e.usersGen, e.postsGen, hash), data, t.cfg.ResponseTTL).Err(); err != nil {
		t.log.WarnContext(ctx, "write response cache", slog.Any("error", err))
		return
	}
	t.keepLocal(ctx, e, hash, data)
}

// keepLocal keeps a response read or stored in Redis in this process too,
// unless the local copy dropped anything since the lookup began: the
// response may have been built before a write the drop announced. A drop
// that comes between the check and the keeping is seen by the check after
// it (a drop moves the epoch before it empties the copy).
func (t *Tiers) keepLocal(ctx context.Context, e ResponseEntry, hash string, data []byte) {
	l := t.responses
	if !e.local || !t.synced() || l.epoch.Load() != e.epoch {
		return
	}
	l.m.Add(ctx, hash, data)
	if l.epoch.Load() != e.epoch {
		l.m.Remove(hash)
	}
}

// localResponsesBytes bounds the responses a process keeps (keys and
// JSON), whatever the response tier's TTL.
const localResponsesBytes = 32 << 20

// localResponses is the response tier's copy in this process: entries
// live as long as in Redis (the tier's TTL from when they were kept here)
// and are all dropped on any write (the bus's responsesTopic, or a user's
// update), as the generations in Redis make every response unreachable.
type localResponses struct {
	m *Weighted[[]byte]
	// epoch moves on every drop; a lookup keeps what it found in Redis,
	// or stored there, only if no drop happened since it began.
	epoch atomic.Uint64
}

func newLocalResponses(ttl time.Duration) *localResponses {
	return &localResponses{m: NewExpiringWeighted(localResponsesBytes, ttl,
		func(hash string, data []byte) int { return len(hash) + len(data) + entryOverhead })}
}

// evict drops every response: any of them may show the users written.
func (l *localResponses) evict([]string) { l.purge() }

func (l *localResponses) purge() {
	l.epoch.Add(1)
	l.m.Purge()
}
