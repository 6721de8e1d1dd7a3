package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// benchServer is an instance for benchmarks: the real handler, the API
// rate limit on as in production but raised far above the load (a
// benchmark is one very busy user), served in-process.
type benchServer struct {
	app   *app
	token string
}

func newBenchServer(b *testing.B, users, postsEach int, env map[string]string) *benchServer {
	b.Helper()
	return newTracedBenchServer(b, users, postsEach, env, nil)
}

// newTracedBenchServer is newBenchServer traced by tp (nil: tracing off).
func newTracedBenchServer(b *testing.B, users, postsEach int, env map[string]string, tp trace.TracerProvider) *benchServer {
	b.Helper()
	r := cachetest.New(b)
	full := map[string]string{
		"DATABASE_URL":     entdbtest.DSN(b),
		"APP_REDIS_PREFIX": r.Prefix,
		"APP_JWT_SECRET":   testSecret,
		"APP_RATE_API":     "1000000000/1m",
		"APP_LOG_LEVEL":    "error",
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := loadWith(full)
	if err != nil {
		b.Fatal(err)
	}
	cfg.PasswordMemoryKiB, cfg.PasswordTime = 1024, 1
	a, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler), deps{rdb: cachetest.Open(b, r.Config), tracer: tp})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	if users > 0 {
		seed(b, a.db.Client, users, postsEach)
	}
	s := &benchServer{app: a}
	res := s.post(b, "", `mutation { register(input: {email: "bench@example.com", password: "plum-tree-42", name: "Bench"}) { accessToken } }`)
	var out struct {
		Data struct{ Register struct{ AccessToken string } }
	}
	if err := json.Unmarshal(res, &out); err != nil || out.Data.Register.AccessToken == "" {
		b.Fatalf("register: %s", res)
	}
	s.token = out.Data.Register.AccessToken
	for deadline := time.Now().Add(5 * time.Second); !a.sessions.Synced(); {
		if time.Now().After(deadline) {
			b.Fatal("revocations never synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

func (s *benchServer) post(b *testing.B, token, query string) []byte {
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.1:1234"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.app.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
		b.Fatalf("%s: %d %s", query, rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

// run measures one query through the handler, from parallel goroutines.
func (s *benchServer) run(b *testing.B, token, query string) {
	s.post(b, token, query) // warm: caches, parsed-query LRU
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Labelled, so that a CPU profile of several benchmarks can be
		// split by benchmark (go tool pprof -tagfocus bench=...).
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", b.Name())))
		for pb.Next() {
			s.post(b, token, query)
		}
	})
}

// BenchmarkAuth compares an authenticated query with an anonymous one on
// the same server. typename_authenticated against typename_anonymous is
// the cost of authentication itself (a remembered signature check and two
// map lookups); me_authenticated adds executing a field.
func BenchmarkAuth(b *testing.B) {
	s := newBenchServer(b, 0, 0, map[string]string{"APP_CACHE_RESPONSE_TTL": "0", "APP_DEBUG_COST": "false"})
	b.Run("typename_anonymous", func(b *testing.B) { s.run(b, "", `{ __typename }`) })
	b.Run("typename_authenticated", func(b *testing.B) { s.run(b, s.token, `{ __typename }`) })
	b.Run("me_authenticated", func(b *testing.B) { s.run(b, s.token, `{ me { id email } }`) })
}

// BenchmarkFeed is the feed of 100 posts by 100 authors, warm.
func BenchmarkFeed(b *testing.B) {
	const feed = `{ posts(first: 100) { edges { node { title author { name } } } } }`
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"all_tiers", nil},
		{"no_response_tier", map[string]string{"APP_CACHE_RESPONSE_TTL": "0"}},
		{"no_cache", map[string]string{"APP_CACHE_RESPONSE_TTL": "0", "APP_CACHE_PAGE_TTL": "0", "APP_CACHE_USER_TTL": "0"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newBenchServer(b, 100, 1, tc.env)
			s.run(b, s.token, feed)
		})
	}
}

// BenchmarkPostsScale is posts(first: 20) over 1,000 and 100,000 posts,
// without caches (the keyset query itself) and with them.
func BenchmarkPostsScale(b *testing.B) {
	const page = `{ posts(first: 20) { edges { cursor node { id title createdAt } } pageInfo { hasNextPage endCursor } } }`
	noCache := map[string]string{"APP_CACHE_RESPONSE_TTL": "0", "APP_CACHE_PAGE_TTL": "0", "APP_CACHE_USER_TTL": "0"}
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("posts=%d/no_cache", n), func(b *testing.B) {
			s := newBenchServer(b, 100, n/100, noCache)
			s.run(b, s.token, page)
		})
	}
}

// BenchmarkPage20 is the page the Apollo peer is measured on (bench/run.sh
// section 5): posts(first: 20) with each author's name, over 100 users and
// 2,000 posts, without caches and with every tier.
func BenchmarkPage20(b *testing.B) {
	const page = `{ posts(first: 20) { edges { node { id title author { name } } } } }`
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"no_cache", map[string]string{"APP_CACHE_RESPONSE_TTL": "0", "APP_CACHE_PAGE_TTL": "0", "APP_CACHE_USER_TTL": "0"}},
		{"no_response_tier", map[string]string{"APP_CACHE_RESPONSE_TTL": "0"}},
		{"all_tiers", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newBenchServer(b, 100, 20, tc.env)
			s.run(b, s.token, page)
		})
	}
}
