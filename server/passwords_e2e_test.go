package main

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Password hashes are bounded: with every hashing slot taken, further
// logins wait their turn for APP_PASSWORD_HASH_WAIT and are then refused
// with SERVICE_UNAVAILABLE (HTTP 503, Retry-After), never hashed beside
// the others.
func TestPasswordHashesBounded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	e.env["APP_PASSWORD_HASH_CONCURRENCY"] = "2"
	e.env["APP_PASSWORD_HASH_WAIT"] = "100ms"
	var (
		armed   atomic.Bool
		mu      sync.Mutex
		maxHeld int
		release = make(chan struct{})
	)
	// Once armed, every slot taken is held until the test releases them:
	// whatever the timing, the requests beyond the bound can only end by
	// giving up their wait.
	e.onHashSlot = func(held int) {
		if !armed.Load() {
			return
		}
		mu.Lock()
		maxHeld = max(maxHeld, held)
		mu.Unlock()
		<-release
	}
	s := e.start(t)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	armed.Store(true)

	const n = 8
	answers := make(chan gqlResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers <- s.as(t, caller{addr: fmt.Sprintf("203.0.113.%d", i+1)}, loginQ, loginVars("ann@example.com", fmt.Sprintf("guess-%d-xyz", i)))
		})
	}
	deadline := time.After(time.Minute)
	for i := range n - 2 {
		select {
		case r := <-answers:
			if got, want := r.code(t), "SERVICE_UNAVAILABLE"; got != want {
				t.Errorf("answer %d while both slots are held: code=%q, want %q", i+1, got, want)
			}
			if got, want := r.Status, http.StatusServiceUnavailable; got != want {
				t.Errorf("status=%d, want %d", got, want)
			}
			if r.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After header")
			}
		case <-deadline:
			close(release)
			t.Fatalf("only %d of %d logins answered while the slots were held", i, n-2)
		}
	}
	close(release)
	wg.Wait()
	close(answers)
	for r := range answers {
		if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("a login that held a slot: code=%q, want %q", got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := maxHeld, 2; got != want {
		t.Errorf("most hashing slots held at once=%d, want %d", got, want)
	}
}
