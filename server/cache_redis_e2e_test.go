package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// startWithCache starts an instance of e whose cache tiers and persisted
// queries use cacheRdb (nil: the main Redis), logging at debug level. The
// main Redis is e.env["REDIS_URL"] if set, else the environment's.
func (e *testEnv) startWithCache(t *testing.T, cacheRdb redis.UniversalClient) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	main := e.redis.Config
	if u := e.env["REDIS_URL"]; u != "" {
		main = rdb.Config{URL: u}
	}
	a, err := newApp(context.Background(), e.config(t), log, deps{
		now: e.clock.Now, rdb: cachetest.Open(t, main), cacheRdb: cacheRdb,
	})
	if err != nil {
		t.Fatalf("start instance: %v", err)
	}
	ts := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return &testServer{Server: ts, app: a, logs: logs}
}

// useEveryCacheTier writes an entry of every kind the cache keeps: user
// records and their generations, post pages and counts, the users count,
// whole responses, a persisted query.
func useEveryCacheTier(t *testing.T, e *testEnv, s *testServer) {
	t.Helper()
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, ann.Access, "one", "first")
	s.do(t, ann.Access, `mutation { updateMe(input: {name: "Ann B"}) { name } }`, nil).mustOK(t)
	for range 2 {
		s.do(t, ann.Access, `{ me { name } posts(first: 5) { totalCount edges { node { title author { name } } } } }`, nil).mustOK(t)
	}
	if err := promoteAdmin(t.Context(), []string{"ann@example.com"}, func(k string) string {
		return map[string]string{"DATABASE_URL": e.dsn}[k]
	}, &strings.Builder{}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	s.do(t, ann.Access, `{ users(first: 5) { totalCount } }`, nil).mustOK(t)
	const q = `{ me { id } }`
	sum := sha256.Sum256([]byte(q))
	s.postJSON(t, ann.Access, map[string]any{"query": q, "extensions": map[string]any{
		"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}}).mustOK(t)
}

// cacheKinds are the key families of the cache tiers and persisted queries.
var cacheKinds = []string{"cache:user:", "cache:{c}:users:gen", "cache:{c}:posts:gen", "cache:{c}:page:",
	"cache:{c}:count:", "cache:{c}:count:users:", "cache:{c}:resp:", "apq:"}

// Every cache key written expires: a Redis shared with sessions never fills
// up with cache entries, whichever tier wrote them.
func TestCacheKeysAllExpire(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	useEveryCacheTier(t, e, s)
	rdb := e.redis.Client
	seen := map[string]bool{}
	for _, pattern := range []string{e.redis.Prefix + "cache:*", e.redis.Prefix + "apq:*"} {
		for _, k := range cachetest.Keys(t, rdb, pattern) {
			ttl, err := rdb.PTTL(t.Context(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl <= 0 {
				t.Errorf("%s has no TTL (PTTL %v)", k, ttl)
			}
			for _, kind := range cacheKinds {
				if strings.HasPrefix(k, e.redis.Prefix+kind) {
					seen[kind] = true
				}
			}
		}
	}
	for _, kind := range cacheKinds {
		if !seen[kind] {
			t.Errorf("no %s key was written: the test does not cover that tier", kind)
		}
	}
}

// With APP_CACHE_REDIS_URL, the cache tiers and persisted queries write to
// that Redis only, while sessions, rate limits, revocations and the bus
// stay on the main one.
func TestCacheTiersUseTheCacheRedis(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	m := miniredis.RunT(t)
	s := e.startWithCache(t, cachetest.Open(t, rdb.Config{URL: "redis://" + m.Addr()}))
	useEveryCacheTier(t, e, s)
	p := e.redis.Prefix
	for _, k := range m.Keys() {
		if !strings.HasPrefix(k, p+"cache:") && !strings.HasPrefix(k, p+"apq:") {
			t.Errorf("the cache Redis holds %s, which is not a cache key", k)
		}
	}
	seen := map[string]bool{}
	for _, k := range m.Keys() {
		for _, kind := range cacheKinds {
			if strings.HasPrefix(k, p+kind) {
				seen[kind] = true
			}
		}
	}
	for _, kind := range cacheKinds {
		if !seen[kind] {
			t.Errorf("no %s key in the cache Redis", kind)
		}
	}
	main := cachetest.Keys(t, e.redis.Client, p+"*")
	var sessions bool
	for _, k := range main {
		if strings.HasPrefix(k, p+"cache:") || strings.HasPrefix(k, p+"apq:") {
			t.Errorf("the main Redis holds the cache key %s", k)
		}
		sessions = sessions || strings.HasPrefix(k, p+"session:")
	}
	if !sessions {
		t.Errorf("no session in the main Redis: %v", main)
	}
}

// A generation counter that was evicted (or expired) never comes back with
// an old value: a page stored before a write stays unreachable.
func TestEvictedGenerationServesNothingStale(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const list = `{ posts(first: 5) { edges { node { title } } } }`
	titles := func() string {
		r := s.do(t, ann.Access, list, nil).mustOK(t)
		var out []string
		for _, edge := range r.get("posts.edges").([]any) {
			out = append(out, edge.(map[string]any)["node"].(map[string]any)["title"].(string))
		}
		return strings.Join(out, ",")
	}
	evict := func() {
		if err := e.redis.Client.Del(t.Context(), e.redis.Prefix+"cache:{c}:posts:gen", e.redis.Prefix+"cache:{c}:users:gen").Err(); err != nil {
			t.Fatal(err)
		}
	}
	evict()
	if got := titles(); got != "" { // a page stored under the counter read now
		t.Fatalf("titles=%q, want none", got)
	}
	s.createPost(t, ann.Access, "one", "first")
	evict() // the counter the write moved on is lost
	if got, want := titles(), "one"; got != want {
		t.Errorf("after the write and an eviction: titles=%q, want %q (a page from before the write)", got, want)
	}
}

// The server warns at start-up when the main Redis may evict session state,
// and only then; where CONFIG is refused it says so at debug level.
func TestWarnsWhenRedisMayEvictSessions(t *testing.T) {
	t.Parallel()
	p := startRedis(t, 0)
	admin := cachetest.Open(t, rdb.Config{URL: p.url()})
	const warning = "the main Redis may evict session state"
	for _, tc := range []struct {
		policy string
		warn   bool
	}{{"allkeys-lru", true}, {"volatile-ttl", true}, {"noeviction", false}} {
		if err := admin.ConfigSet(t.Context(), "maxmemory-policy", tc.policy).Err(); err != nil {
			t.Fatal(err)
		}
		e := newTestEnv(t)
		e.env["REDIS_URL"] = p.url()
		s := e.startWithCache(t, nil)
		if got := strings.Contains(s.logs.String(), warning); got != tc.warn {
			t.Errorf("maxmemory-policy %s: warned=%v, want %v; log:\n%s", tc.policy, got, tc.warn, s.logs)
		}
		if tc.warn && !strings.Contains(s.logs.String(), `maxmemory_policy="127.0.0.1:`) {
			t.Errorf("the warning does not name the policy: %s", s.logs)
		}
	}
	// miniredis has no CONFIG command, like a managed Redis that renamed it.
	e := newTestEnv(t)
	e.env["REDIS_URL"] = "redis://" + miniredis.RunT(t).Addr()
	s := e.startWithCache(t, nil)
	if logs := s.logs.String(); strings.Contains(logs, warning) || !strings.Contains(logs, "level=DEBUG msg=\"cannot read the Redis maxmemory-policy") {
		t.Errorf("CONFIG refused: want a debug line and no warning; log:\n%s", logs)
	}
}

// promote-admin and demote-admin invalidate the user in the Redis that
// holds the cache tiers: APP_CACHE_REDIS_URL's when it is set, not the
// main one.
func TestRoleCommandsForgetTheUserInTheCacheRedis(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	m := miniredis.RunT(t)
	s := e.startWithCache(t, cachetest.Open(t, rdb.Config{URL: "redis://" + m.Addr()}))
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	id := s.do(t, ann.Access, `{ me { id } }`, nil).mustOK(t).str("me.id")
	p := e.redis.Prefix
	s.do(t, ann.Access, `{ me { name } }`, nil).mustOK(t)
	if !m.Exists(p + "cache:user:{" + id + "}") {
		t.Fatalf("the cache Redis holds no record of the user: %v", m.Keys())
	}
	for _, cmd := range []func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{promoteAdmin, demoteAdmin} {
		gen, _ := m.Get(p + "cache:{c}:users:gen")
		adminCommand(t, e, cmd, "ann@example.com", map[string]string{"APP_CACHE_REDIS_URL": "redis://" + m.Addr()})
		if m.Exists(p + "cache:user:{" + id + "}") {
			t.Error("the user's record is still in the cache Redis")
		}
		if now, _ := m.Get(p + "cache:{c}:users:gen"); now == gen {
			t.Errorf("the users generation of the cache Redis stayed %q", gen)
		}
		for _, k := range cachetest.Keys(t, e.redis.Client, p+"cache:*") {
			t.Errorf("the command wrote %s to the main Redis", k)
		}
	}
}
