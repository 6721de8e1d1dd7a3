package cache

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// PageKey names a page of a list in the page tier: Page identifies the
// page (list, order, size, cursors), Count the list whose total is wanted
// with it ("" for none).
type PageKey struct {
	Page  string
	Count string
}

// PageRead is what ReadPages found, and the posts generation it read under.
type PageRead[P any] struct {
	// Pages and Counts hold, per key, the cached page and total, or nil.
	Pages  []*P
	Counts []*int
	gen    int64
	// ok: Redis answered, so what the database answers may be stored
	// under gen.
	ok bool
}

// readPages reads the posts generation and, under it, pages and counts, in
// one round trip.
//
//	KEYS[1] posts generation   ARGV[1], ARGV[2] seed and TTL (genArgs)
//	ARGV[3] page key prefix   ARGV[4] count key prefix
//	ARGV[5..] pairs of (page hash, count list or '')
//
// Returns {generation, page1, count1, page2, count2, ...}, missing ones false.
var readPages = redis.NewScript(genLua + `
local g = gen(KEYS[1])
local out = {g}
for i = 5, #ARGV, 2 do
  table.insert(out, redis.call('GET', ARGV[3] .. g .. ':' .. ARGV[i]) or false)
  if ARGV[i+1] ~= '' then
    table.insert(out, redis.call('GET', ARGV[4] .. g .. ':' .. ARGV[i+1]) or false)
  else
    table.insert(out, false)
  end
end
return out
`)

// PagesCached reports whether pages are cached (the page tier is on): a
// page read from the database is then kept for any later selection.
func (t *Tiers) PagesCached() bool { return t.cfg.PageTTL > 0 }

// ReadPages looks pages (read into P, see decodePage) and list totals up in the page
// tier, under the current posts generation, in one round trip. On any
// Redis failure it reports misses, and the database answers.
func ReadPages[P any](ctx context.Context, t *Tiers, keys []PageKey) PageRead[P] {
	read := PageRead[P]{Pages: make([]*P, len(keys)), Counts: make([]*int, len(keys))}
	if t.cfg.PageTTL <= 0 {
		return read
	}
	args := append(t.genArgs(), t.k.pagePrefix(), t.k.countPrefix())
	for _, k := range keys {
		args = append(args, k.Page, k.Count)
	}
	res, err := readPages.Run(ctx, t.rdb, []string{t.k.postsGen()}, args...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "post cache unavailable; reading the database", slog.Any("error", err))
		observePages(t, keys, read)
		return read
	}
	read.gen, read.ok = parseGen(fmt.Sprint(res[0])), true
	for i := range keys {
		if s, ok := res[1+2*i].(string); ok {
			read.Pages[i] = decodePage[P](s)
		}
		if s, ok := res[2+2*i].(string); ok {
			if n, err := strconv.Atoi(s); err == nil {
				read.Counts[i] = &n
			}
		}
	}
	observePages(t, keys, read)
	return read
}

// A page is stored in the form its type gives (encoding.BinaryMarshaler),
// else as JSON; one that does not encode is not stored, and what does not
// decode is a miss, so entries of another form (written by another
// version) are simply read again from the database.

func encodePage[P any](p *P) ([]byte, error) {
	if m, ok := any(p).(encoding.BinaryMarshaler); ok {
		return m.MarshalBinary()
	}
	return json.Marshal(p)
}

func decodePage[P any](s string) *P {
	var p P
	if u, ok := any(&p).(encoding.BinaryUnmarshaler); ok {
		if u.UnmarshalBinary([]byte(s)) != nil {
			return nil
		}
		return &p
	}
	if json.Unmarshal([]byte(s), &p) != nil {
		return nil
	}
	return &p
}

// observePages reports the hits and misses of a page lookup.
func observePages[P any](t *Tiers, keys []PageKey, read PageRead[P]) {
	for i, k := range keys {
		t.obs.Access(TierPage, read.Pages[i] != nil)
		if k.Count != "" {
			t.obs.Access(TierCount, read.Counts[i] != nil)
		}
	}
}

// StorePages writes pages and totals built from the database (nil ones
// are skipped) under the generation read before the database was: if a
// write happened meanwhile, they are already unreachable.
func StorePages[P any](ctx context.Context, t *Tiers, read PageRead[P], keys []PageKey, pages []*P, counts []*int) {
	if !read.ok {
		return
	}
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			if pages[i] != nil {
				if b, err := encodePage(pages[i]); err == nil {
					p.Set(ctx, t.k.page(read.gen, k.Page), b, t.cfg.PageTTL)
				}
			}
			if counts[i] != nil {
				p.Set(ctx, t.k.count(read.gen, k.Count), *counts[i], t.cfg.PageTTL)
			}
		}
		return nil
	})
	if err != nil {
		t.log.WarnContext(ctx, "write post cache", slog.Any("error", err))
	}
}
