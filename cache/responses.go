package cache

import (
	"context"
	"fmt"
	"log/slog"

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
}

// Response looks up a whole response (the design's 1-minute tier). The
// hash must cover the operation, its variables and the viewer's scope. A
// response depends on users and posts, so it is stored under both
// generations: any write of either makes it unreachable.
func (t *Tiers) Response(ctx context.Context, hash string) ResponseEntry {
	if t.cfg.ResponseTTL <= 0 {
		return ResponseEntry{}
	}
	res, err := readResponse.Run(ctx, t.rdb, []string{t.k.usersGen(), t.k.postsGen()}, append(t.genArgs(), t.k.responsePrefix(), hash)...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "response cache unavailable", slog.Any("error", err))
		t.obs.Access(TierResponse, false)
		return ResponseEntry{}
	}
	e := ResponseEntry{usersGen: parseGen(fmt.Sprint(res[0])), postsGen: parseGen(fmt.Sprint(res[1])), ok: true}
	if s, ok := res[2].(string); ok {
		e.Data = []byte(s)
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
	}
}
