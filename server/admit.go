package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/graph"
)

// admission lets at most a few requests run on the CPU at once
// (APP_MAX_RUNNING_REQUESTS, by default one per core); the others wait
// their turn in the order they came. Go's scheduler would share the cores
// among every request that has come in: with 32 in flight on two cores,
// each takes sixteen times its own time, and the slowest wait behind all
// the others. In order, a request takes its own time plus the queue's, as
// with a single-threaded worker.
//
// A request waiting on the network (a Redis round trip, a statement sent
// to PostgreSQL, other instances' acknowledgements: cost.Waiter) gives its
// place to the next meanwhile, and counts itself in again as soon as its
// answer is in, without waiting: so nothing it holds (a pooled connection,
// a transaction, a lock) can wait on a request that waits for a place, and
// only requests that hold nothing yet ever wait. A request gives its place
// up for good at its response's first byte: a client that reads slowly
// holds nobody up.
type admission struct {
	limit int

	mu      sync.Mutex
	running int
	queue   []chan struct{} // in arrival order; closed: the place is given

	entered atomic.Int64 // requests given a place, in all
	queued  atomic.Int64 // requests that have had to wait, in all
	late    atomic.Int64 // requests whose deadline passed as they waited
}

func newAdmission(limit int) *admission { return &admission{limit: limit} }

// state returns the requests counted as running and those waiting.
func (g *admission) state() (running, waiting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, len(g.queue)
}

// collectors are the admission's metrics.
func (g *admission) collectors() []prometheus.Collector {
	running := func() int64 { r, _ := g.state(); return int64(r) }
	waiting := func() int64 { _, w := g.state(); return int64(w) }
	return []prometheus.Collector{
		liveGauge("requests_running", "Requests counted as running on the CPU (APP_MAX_RUNNING_REQUESTS); one waiting on the network is not.",
			loadFunc(running)),
		liveGauge("requests_waiting", "Requests waiting for their turn to run.", loadFunc(waiting)),
		liveCounter("requests_queued_total", "Requests that waited for their turn to run.", &g.queued),
		liveCounter("requests_late_total", "Requests refused with SERVICE_UNAVAILABLE: their deadline passed while they waited for their turn.", &g.late),
	}
}

// loadFunc reads a figure for liveGauge.
type loadFunc func() int64

func (f loadFunc) Load() int64 { return f() }

// enter waits for a place. It returns ctx's error if ctx ends first; it
// then holds none.
func (g *admission) enter(ctx context.Context) error {
	g.mu.Lock()
	if g.running < g.limit && len(g.queue) == 0 {
		g.running++
		g.entered.Add(1)
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.queue = append(g.queue, ch)
	g.queued.Add(1)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		g.late.Add(1)
	}
	g.mu.Lock()
	if i := slices.Index(g.queue, ch); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	g.leave() // the place came as ctx ended: pass it on
	return ctx.Err()
}

// rejoin counts a request back in without waiting; the running count may
// then pass the limit, and new requests wait until it is under again.
func (g *admission) rejoin() {
	g.mu.Lock()
	g.running++
	g.mu.Unlock()
}

// leave gives a place up: to the first request waiting, if the running
// count is under the limit.
func (g *admission) leave() {
	g.mu.Lock()
	g.running--
	if g.running < g.limit && len(g.queue) > 0 {
		ch := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		g.running++
		g.entered.Add(1)
		close(ch)
	}
	g.mu.Unlock()
}

// place is one admitted request's standing (a cost.Waiter): whether it is
// counted as running, and how many of its goroutines wait on the network.
type place struct {
	g       *admission
	mu      sync.Mutex
	held    bool
	waiting int
	done    bool
}

// Away implements cost.Waiter: the first of the request's goroutines to
// wait gives the place up.
func (p *place) Away() {
	p.mu.Lock()
	p.waiting++
	if p.waiting == 1 && p.held {
		p.held = false
		p.g.leave()
	}
	p.mu.Unlock()
}

// Back implements cost.Waiter: when the last comes back, the request
// counts itself in again, at once.
func (p *place) Back() {
	p.mu.Lock()
	p.waiting--
	if p.waiting == 0 && !p.held && !p.done {
		p.held = true
		p.g.rejoin()
	}
	p.mu.Unlock()
}

// finish gives the place up for good.
func (p *place) finish() {
	p.mu.Lock()
	p.done = true
	if p.held {
		p.held = false
		p.g.leave()
	}
	p.mu.Unlock()
}

// admit runs each request once it has a place, but WebSockets and event
// streams (they live for their session, and are bounded apart). It must
// run inside withCost (the request's cost.Counts carry its place) and
// after the body has been read (limitBody): a client sending slowly holds
// no place. A request still waiting at its deadline is refused with
// SERVICE_UNAVAILABLE and Retry-After: 1.
func (g *admission) admit(next http.Handler) http.Handler {
	if g == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cost.FromContext(r.Context())
		if isLive(r) || c == nil {
			next.ServeHTTP(w, r)
			return
		}
		if err := g.enter(r.Context()); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// As the other SERVICE_UNAVAILABLE refusals (problems.go).
				w.Header().Set("Retry-After", "1")
				graph.Refusal{Code: graph.CodeServiceUnavailable, Message: "the server is too busy to run this request in time",
					Extensions: map[string]any{"retryAfter": 1}}.Write(w, r)
			} else {
				writeError(w, r, graph.CodeClientClosed, "the client closed the request")
			}
			return
		}
		p := &place{g: g, held: true}
		defer p.finish()
		c.SetWaiter(p)
		next.ServeHTTP(&admittedWriter{ResponseWriter: w, p: p}, r)
	})
}

// admittedWriter gives the request's place up at the response's first
// byte (a writer is used by one goroutine at a time, so a plain flag
// spares the later writes the place's lock).
type admittedWriter struct {
	http.ResponseWriter
	p        *place
	finished bool
}

func (w *admittedWriter) finish() {
	if !w.finished {
		w.finished = true
		w.p.finish()
	}
}

func (w *admittedWriter) WriteHeader(code int) {
	w.finish()
	w.ResponseWriter.WriteHeader(code)
}

func (w *admittedWriter) Write(b []byte) (int, error) {
	w.finish()
	return w.ResponseWriter.Write(b)
}

// Flush passes a flush on (multipart responses flush each part).
func (w *admittedWriter) Flush() {
	w.finish()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *admittedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
