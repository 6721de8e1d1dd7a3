package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authql/authql/graph"
)

// bounded gives every request but a WebSocket at most d: the response's
// write deadline is set per request (http.ResponseController), and the
// request's context ends a tenth earlier, so a handler waiting on a slow
// dependency gives up with time left to say so. A client reading its
// response too slowly, or a handler that never answers, holds a connection
// for d, not forever. (http.Server.WriteTimeout only fails writes: a stuck
// handler would keep its connection.) A WebSocket lives in its handler, on
// the request's context, for hours: it is exempt, and ends by its own
// rules (idle timeout, pings, its session); so is an event stream (SSE),
// which ends with its session. d <= 0: no bound.
func bounded(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d <= 0 || isLive(r) {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			// An error means the writer cannot take a deadline (none of ours).
			_ = http.NewResponseController(w).SetWriteDeadline(start.Add(d))
			ctx, cancel := context.WithDeadline(r.Context(), start.Add(d-d/10))
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// isLive reports whether r asks for a connection that lives as long as its
// session: a WebSocket, or an event stream (graph.WantsEventStream).
func isLive(r *http.Request) bool {
	return isWebSocket(r) || (r.URL.Path == "/query" && graph.WantsEventStream(r))
}

// isWebSocket reports whether r asks for a WebSocket on the API: the only
// route that serves one, so an Upgrade header elsewhere escapes nothing.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/query" &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// noStore marks every API response as not to be stored by any cache: the
// responses of login, register, refresh and changePassword carry tokens,
// and every other one answers for a signed-in user. Queries over GET get it
// too: the server's own response cache is where they are cached.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// pendingSockets caps, per client and instance, the WebSockets that have
// not completed connection_init: each holds a connection and a goroutine
// for up to graph.SocketInitTimeout before anyone is known behind it. Over
// the cap the upgrade is refused with HTTP 429 before it happens. A client
// is what client returns: its address as per-address rate limits count it
// (auth.AddrKey), so one holder of an IPv6 /64 is one client.
// Authenticated sockets are capped per user (APP_WS_MAX_CONNECTIONS_PER_USER).
type pendingSockets struct {
	max    int
	client func(*http.Request) string

	mu   sync.Mutex
	byIP map[string]int
}

func (p *pendingSockets) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.max <= 0 || !isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		ip := p.client(r)
		if !p.acquire(ip) {
			retry := int(graph.SocketInitTimeout / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			graph.Refusal{
				Code:       graph.CodeRateLimited,
				Message:    "too many WebSockets from this address have not sent connection_init",
				Extensions: map[string]any{"retryAfter": retry},
			}.Write(w, r)
			return
		}
		var once sync.Once
		release := func() { once.Do(func() { p.release(ip) }) }
		defer release() // the socket ended (the handler returns with it)
		next.ServeHTTP(w, r.WithContext(graph.WithSocketInit(r.Context(), release)))
	})
}

func (p *pendingSockets) acquire(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byIP == nil {
		p.byIP = map[string]int{}
	}
	if p.byIP[ip] >= p.max {
		return false
	}
	p.byIP[ip]++
	return true
}

func (p *pendingSockets) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byIP[ip]--; p.byIP[ip] <= 0 {
		delete(p.byIP, ip)
	}
}
