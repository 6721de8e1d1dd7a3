package main

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// turnSlice is how long one connection's requests may run back to back
// before its goroutine lets the others run. A keep-alive client that sends
// its next request as soon as an answer comes (a busy proxy's upstream
// connection, a load generator) has it read at once, without waiting, and
// Go's scheduler lets a goroutine that never waits keep its core for
// 10 ms: under load, requests already in other connections' sockets
// waited that long while one connection was served over and over
// (bench/run.sh, `me` at 32 connections: p99 16–18 ms, median 0.6 ms).
// Past its slice, a connection's next request goes behind the goroutines
// ready to run. The slice is wall time since the turn began, so a
// connection that also waited between its requests yields at the next
// one too: with none other ready to run, that costs a trip through the
// scheduler.
const turnSlice = time.Millisecond

// turns gives connections their turns: withTurn as the server's
// ConnContext, take around its handler.
type turns struct {
	slice time.Duration
	now   func() int64 // nanoseconds
	yield func()
}

// cpuTurns are the server's.
var cpuTurns = turns{slice: turnSlice, now: func() int64 { return time.Now().UnixNano() }, yield: runtime.Gosched}

// connTurn is when a connection's current turn began, in nanoseconds.
type connTurn struct{ began atomic.Int64 }

type connTurnKey struct{}

// withTurn gives each connection its turn (http.Server.ConnContext).
func (ts turns) withTurn(ctx context.Context, _ net.Conn) context.Context {
	t := new(connTurn)
	t.began.Store(ts.now())
	return context.WithValue(ctx, connTurnKey{}, t)
}

// take yields before a request whose connection has had its slice, and
// starts its next turn. A request on a connection given no turn
// (withTurn) runs as it comes.
func (ts turns) take(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(connTurnKey{}).(*connTurn); ok && ts.now()-t.began.Load() > int64(ts.slice) {
			ts.yield()
			t.began.Store(ts.now())
		}
		next.ServeHTTP(w, r)
	})
}
