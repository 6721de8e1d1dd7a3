package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/graph"
)

// waitState waits until the admission counts running and waiting requests.
func waitState(t *testing.T, g *admission, running, waiting int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		r, w := g.state()
		if r == running && w == waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission: %d running, %d waiting; want %d and %d", r, w, running, waiting)
		}
	}
}

// Requests that wait get their places in the order they came.
func TestAdmissionInArrivalOrder(t *testing.T) {
	t.Parallel()
	g := newAdmission(1)
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := g.enter(context.Background()); err != nil {
				t.Error(err)
			}
			order <- i
		}()
		waitState(t, g, 1, i+1) // queued before the next one comes
	}
	for want := range 3 {
		g.leave()
		if got := <-order; got != want {
			t.Fatalf("place %d went to request %d", want, got)
		}
	}
	g.leave()
	waitState(t, g, 0, 0)
}

// A request that gives up waiting leaves the queue, and the place it
// would have had goes to the next.
func TestAdmissionWaiterGivesUp(t *testing.T) {
	t.Parallel()
	g := newAdmission(1)
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() { gaveUp <- g.enter(ctx) }()
	waitState(t, g, 1, 1)
	admitted := make(chan struct{})
	go func() {
		if err := g.enter(context.Background()); err == nil {
			close(admitted)
		}
	}()
	waitState(t, g, 1, 2)
	cancel()
	if err := <-gaveUp; err != context.Canceled {
		t.Fatalf("enter after cancel: %v", err)
	}
	waitState(t, g, 1, 1)
	g.leave()
	<-admitted
	waitState(t, g, 1, 0)
}

// A request waiting on the network gives its place up, and comes back
// without waiting, even past the limit; a new request then waits until
// the count is under the limit again. Once finished, a request does not
// come back.
func TestAdmissionAwayAndBack(t *testing.T) {
	t.Parallel()
	g := newAdmission(1)
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := &place{g: g, held: true}
	a.Away()
	a.Away() // a second goroutine of the same request
	waitState(t, g, 0, 0)
	if err := g.enter(context.Background()); err != nil { // b
		t.Fatal(err)
	}
	b := &place{g: g, held: true}
	a.Back()
	waitState(t, g, 1, 0) // one of a's goroutines still waits
	a.Back()
	waitState(t, g, 2, 0) // over the limit, at once
	admitted := make(chan struct{})
	go func() {
		if err := g.enter(context.Background()); err == nil {
			close(admitted)
		}
	}()
	waitState(t, g, 2, 1)
	b.finish()
	waitState(t, g, 1, 1) // still not under the limit
	a.Away()
	<-admitted
	waitState(t, g, 1, 0)
	a.finish()
	a.Back()
	waitState(t, g, 1, 0) // a finished while away: not counted again
}

// A request whose deadline passes as it waits is refused with
// SERVICE_UNAVAILABLE and Retry-After, and counted; the one running is not
// disturbed.
func TestAdmissionRefusesLateRequests(t *testing.T) {
	t.Parallel()
	g := newAdmission(1)
	release := make(chan struct{})
	var ran atomic.Int64
	h := bounded(500 * time.Millisecond)(withCost(g.admit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		_, _ = w.Write([]byte(`{"data":{}}`))
	}))))
	srv := httptest.NewServer(h)
	defer srv.Close()
	held := make(chan int)
	go func() {
		resp, err := http.Post(srv.URL+"/query?hold=1", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Error(err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	waitState(t, g, 1, 0)
	resp, err := http.Post(srv.URL+"/query", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(body.Errors) != 1 || body.Errors[0].Extensions["code"] != graph.CodeServiceUnavailable ||
		resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("late request: status %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if g.late.Load() != 1 || ran.Load() != 1 {
		t.Fatalf("late=%d ran=%d, want 1 and 1", g.late.Load(), ran.Load())
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Fatalf("the running request: status %d", code)
	}
	waitState(t, g, 0, 0)
}

// Through the server, with one request allowed to run: a sign-in stuck on
// a Redis that does not answer (its session is stored there) gives its
// place up, and a query that needs no Redis is answered meanwhile. The
// sign-in is answered once Redis answers.
func TestRequestWaitingOnRedisMakesRoom(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached()
	if e.redis.Config.URL == "" {
		t.Skip("a proxy needs a single Redis")
	}
	e.env["APP_MAX_RUNNING_REQUESTS"] = "1"
	e.env["APP_RATE_API"] = "off"
	proxy := cachetest.NewProxy(t, e.redis.Config.URL)
	var hook atomic.Pointer[func()]
	s := e.startHooked(t, rdb.Config{URL: proxy.URL}, &hook)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	proxy.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			proxy.Thaw()
		}
	}()
	stuck := make(chan gqlResponse, 1)
	go func() {
		stuck <- s.do(t, "", `mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken } }`, nil)
	}()
	// The sign-in is in, and away on Redis: nothing counted as running.
	for deadline := time.Now().Add(10 * time.Second); s.app.admission.entered.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sign-in never got a place")
		}
	}
	waitState(t, s.app.admission, 0, 0)
	r := s.do(t, "", `{ __typename }`, nil)
	if len(r.Errors) != 0 || r.Data["__typename"] != "Query" {
		t.Fatalf("query while a sign-in waits on Redis: %+v", r)
	}
	select {
	case m := <-stuck:
		t.Fatalf("the sign-in returned with Redis frozen: %+v", m)
	default:
	}
	proxy.Thaw()
	thawed = true
	// Answered: signed in, or (on a machine slow enough that its Redis
	// budget ran out meanwhile) SERVICE_UNAVAILABLE.
	if m := <-stuck; len(m.Errors) != 0 && m.Errors[0].Extensions["code"] != graph.CodeServiceUnavailable {
		t.Fatalf("sign-in after Redis answered: %+v", m.Errors)
	}
}
