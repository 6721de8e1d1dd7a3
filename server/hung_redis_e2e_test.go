package main

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// A hung Redis (its process stopped with SIGSTOP: the port still accepts
// connections and nothing answers, unlike a closed port) costs a request
// its Redis budget, APP_REDIS_REQUEST_BUDGET (250 ms), and then
// SERVICE_UNAVAILABLE: queries, mutations and sign-ins, one at a time and
// forty at once (a read served from memory may still be answered for the
// API budget lease's second, auth.LeaseTTL). The test allows 1 s. Resumed, Redis serves again without
// a restart of the instance.
func TestHungRedisAnswersWithinBudget(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	e := newTestEnvOn(t, rdb.Config{URL: srv.URL})
	p := e.startProcess(t, nil)
	s := p.server()
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, tok.Access, "before", "body")
	requests := []struct{ name, token, query string }{
		{"me", tok.Access, `{ me { id } }`},
		{"posts", tok.Access, `{ posts { totalCount edges { node { title } } } }`},
		{"createPost", tok.Access, `mutation { createPost(input: {title: "during", content: "body"}) { id } }`},
		{"login", "", `mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken } }`},
	}
	const bound = time.Second
	var (
		mu       sync.Mutex
		taken    []time.Duration
		pausedAt time.Time
	)
	check := func(name, token, query string) {
		start := time.Now()
		r := s.do(t, token, query, nil)
		d := time.Since(start)
		mu.Lock()
		taken = append(taken, d)
		mu.Unlock()
		if len(r.Errors) == 0 {
			// A read needing no Redis write (authentication, the user
			// tier and the leased API budget are in memory) may be
			// answered until the instance's lease runs out.
			if name == "me" && start.Sub(pausedAt) < auth.LeaseTTL {
				return
			}
			t.Errorf("%s with Redis hung: answered without error", name)
			return
		}
		if got, want := r.Errors[0].Extensions["code"], "SERVICE_UNAVAILABLE"; got != want {
			t.Errorf("%s with Redis hung: code=%v, want %v", name, got, want)
		}
		if got, want := r.Status, http.StatusServiceUnavailable; got != want {
			t.Errorf("%s with Redis hung: status=%d, want %d", name, got, want)
		}
		if d > bound {
			t.Errorf("%s with Redis hung took %v, want at most %v", name, d, bound)
		}
	}

	srv.Pause()
	pausedAt = time.Now()
	for range 3 {
		for _, q := range requests {
			check(q.name, q.token, q.query)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		q := requests[i%len(requests)]
		wg.Add(1)
		go func() { defer wg.Done(); check(q.name+" (concurrent)", q.token, q.query) }()
	}
	wg.Wait()
	slices.Sort(taken)
	t.Logf("%d requests with Redis hung: median %v, slowest %v", len(taken), taken[len(taken)/2], taken[len(taken)-1])

	srv.Resume()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := s.do(t, tok.Access, `{ me { id } }`, nil); len(r.Errors) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving 10 s after Redis resumed; log:\n%s", p.logs)
		}
	}
}
