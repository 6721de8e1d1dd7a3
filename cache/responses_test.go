package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/cost"
)

// responseProcess is one process's response tier over r, with its bus
// running and synced; stop ends the bus's subscription (the process no
// longer hears of writes).
func responseProcess(t *testing.T, r *cachetest.Redis) (tiers *cache.Tiers, b *bus.Bus, stop func()) {
	t.Helper()
	return process(t, r, cache.TierConfig{Prefix: r.Prefix, ResponseTTL: time.Minute})
}

// lookup looks hash up in tiers and says how many Redis round trips it took.
func lookup(t *testing.T, tiers *cache.Tiers, hash string) (cache.ResponseEntry, int64) {
	t.Helper()
	ctx, n := cost.NewContext(t.Context())
	return tiers.Response(ctx, hash), n.Redis.Load()
}

// store runs the lookup a request makes before it executes, then stores
// data as its response.
func store(t *testing.T, tiers *cache.Tiers, hash, data string) {
	t.Helper()
	e, _ := lookup(t, tiers, hash)
	if e.Data != nil {
		t.Fatalf("%s: found %s before it was stored", hash, e.Data)
	}
	tiers.StoreResponse(t.Context(), e, hash, []byte(data))
}

// A response stored by one process is answered from memory there and,
// once read from Redis, in every other process: no round trip.
func TestResponsesAnsweredFromMemory(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	one, _, _ := responseProcess(t, r)
	two, _, _ := responseProcess(t, r)
	store(t, one, "q", `{"a":1}`)
	for _, tc := range []struct {
		name  string
		tiers *cache.Tiers
		trips int64
	}{
		{"the storing process", one, 0},
		{"another process, first read", two, 1},
		{"another process, second read", two, 0},
	} {
		e, trips := lookup(t, tc.tiers, "q")
		if string(e.Data) != `{"a":1}` || trips != tc.trips {
			t.Errorf("%s: %s in %d Redis round trips, want {\"a\":1} in %d", tc.name, e.Data, trips, tc.trips)
		}
	}
}

// Once a write of posts, or of users, returns, no process answers a
// response it held from before the write.
func TestWritesDropResponsesInEveryProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, t *cache.Tiers) error
	}{
		{"PostsWritten", func(ctx context.Context, t *cache.Tiers) error { return t.PostsWritten(ctx) }},
		{"UsersWritten", func(ctx context.Context, t *cache.Tiers) error { return t.UsersWritten(ctx, "u1") }},
		{"UsersCreated", func(ctx context.Context, t *cache.Tiers) error { return t.UsersCreated(ctx, "u2") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cachetest.New(t)
			writer, _, _ := responseProcess(t, r)
			reader, _, _ := responseProcess(t, r)
			// A process without the tiers still announces its writes.
			bare, _, _ := process(t, r, cache.TierConfig{Prefix: r.Prefix})
			for _, w := range []*cache.Tiers{writer, bare} {
				store(t, writer, "q", `{"a":1}`)
				if e, trips := lookup(t, reader, "q"); e.Data == nil || trips != 1 {
					t.Fatalf("reader: %s in %d round trips, want the response from Redis", e.Data, trips)
				}
				if e, trips := lookup(t, reader, "q"); e.Data == nil || trips != 0 {
					t.Fatalf("reader: %s in %d round trips, want the response from memory", e.Data, trips)
				}
				if err := tc.write(t.Context(), w); err != nil {
					t.Fatal(err)
				}
				for name, p := range map[string]*cache.Tiers{"the writer": writer, "the other process": reader} {
					if e, _ := lookup(t, p, "q"); e.Data != nil {
						t.Errorf("%s after %s: answered %s, want a miss", name, tc.name, e.Data)
					}
				}
			}
		})
	}
}

// A response built while a write went through is not kept in memory: the
// lookup began before the write's drop, so the response may show the data
// from before it (in Redis it is stored under the old generations, which
// nothing reads any more).
func TestResponseBuiltAcrossAWriteIsNotKept(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	p, _, _ := responseProcess(t, r)
	e, _ := lookup(t, p, "q")
	if err := p.PostsWritten(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.StoreResponse(t.Context(), e, "q", []byte(`{"stale":true}`))
	if e, _ := lookup(t, p, "q"); e.Data != nil {
		t.Errorf("after a write during the request: answered %s, want a miss", e.Data)
	}
}

// A process that stopped hearing the bus (paused, partitioned) does not
// answer from memory: it asks Redis, where a write it missed has moved the
// generations on.
func TestUnsyncedProcessAsksRedis(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	writer, _, _ := responseProcess(t, r)
	deaf, b, stop := responseProcess(t, r)
	store(t, deaf, "q", `{"a":1}`)
	stop()
	waitFor(t, "bus unsynced", func() bool { return !b.Synced() })
	if err := writer.PostsWritten(t.Context()); err != nil {
		t.Fatal(err)
	}
	e, trips := lookup(t, deaf, "q")
	if e.Data != nil || trips != 1 {
		t.Errorf("unsynced process: %s in %d round trips, want a miss from Redis", e.Data, trips)
	}
}
