package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/graph"
)

// observeOperation is called by the GraphQL handler with every operation
// once its response is ready: it counts it, and logs it to the api stream
// (and to perf if slow). Over plain HTTP the line waits for the end of the
// request (see logOperations), so it can carry the HTTP status.
func (a *app) observeOperation(ctx context.Context, op graph.Operation) {
	if op.Subscription != "" {
		a.observeSubscription(ctx, op)
		return
	}
	a.metrics.operation(op)
	if rec, ok := ctx.Value(opRecordKey{}).(*opRecord); ok && rec.op.CompareAndSwap(nil, &op) {
		return
	}
	a.logOperation(ctx, op, 0)
}

// opRecord holds the operation of one HTTP request until it ends.
type opRecord struct {
	op atomic.Pointer[graph.Operation]
}

type opRecordKey struct{}

// logOperations logs the operation of each GraphQL request once the
// request has ended, with the status it was answered with. A WebSocket
// carries many operations and has no status of its own: each is logged
// when its response is ready.
func (a *app) logOperations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		rec := &opRecord{}
		ctx := context.WithValue(r.Context(), opRecordKey{}, rec)
		sw := graph.NewStatusWriter(w)
		next.ServeHTTP(sw, r.WithContext(ctx))
		if op := rec.op.Load(); op != nil {
			a.logOperation(ctx, *op, sw.Status())
		}
	})
}

// logOperation writes the api line of an operation and, if it was slow,
// the perf line with what it cost. Neither holds variables, tokens or
// anything else from the request body but the operation's name, cut as
// the metrics cut it.
func (a *app) logOperation(ctx context.Context, op graph.Operation, status int) {
	name := operationName(op.Name)
	attrs := []slog.Attr{
		slog.String("operation", name),
		slog.String("type", opType(op)),
		slog.Float64("duration_ms", ms(op.Duration)),
		slog.String("outcome", op.Outcome()),
	}
	if status != 0 {
		attrs = append(attrs, slog.Int("status", status))
	}
	if op.UserID != "" {
		attrs = append(attrs, slog.String("user_id", string(op.UserID)))
	}
	a.logs.api.LogAttrs(ctx, slog.LevelInfo, "graphql operation", attrs...)

	if a.cfg.SlowThreshold <= 0 || op.Duration < a.cfg.SlowThreshold {
		return
	}
	attrs = []slog.Attr{
		slog.String("operation", name),
		slog.String("type", opType(op)),
		slog.Float64("duration_ms", ms(op.Duration)),
		slog.Float64("threshold_ms", ms(a.cfg.SlowThreshold)),
		slog.Int("complexity", op.Complexity),
	}
	if c := cost.FromContext(ctx); c != nil {
		attrs = append(attrs,
			slog.Int64("sql_statements", c.SQL.Load()),
			slog.Int64("redis_round_trips", c.Redis.Load()),
			slog.Int64("auth_redis_round_trips", c.AuthRedis.Load()))
	}
	a.logs.perf.LogAttrs(ctx, slog.LevelWarn, "slow operation", attrs...)
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// opType is the type label of an operation: "unknown" if it never parsed.
func opType(op graph.Operation) string {
	if op.Type == "" {
		return "unknown"
	}
	return op.Type
}

// observeSubscription logs a subscription when it starts and when it ends
// (with its lifetime and the events it delivered) to the api stream, and
// counts it. A subscription's lifetime is not an operation's duration: it
// is neither observed as one nor compared with the slow threshold.
func (a *app) observeSubscription(ctx context.Context, op graph.Operation) {
	a.metrics.subscription(op)
	attrs := []slog.Attr{
		slog.String("operation", operationName(op.Name)),
		slog.String("type", opType(op)),
	}
	if op.UserID != "" {
		attrs = append(attrs, slog.String("user_id", string(op.UserID)))
	}
	if op.Subscription == "started" {
		a.logs.api.LogAttrs(ctx, slog.LevelInfo, "subscription started", attrs...)
		return
	}
	attrs = append(attrs,
		slog.Float64("duration_ms", ms(op.Duration)),
		slog.Int64("events", op.Events),
		slog.String("outcome", op.Outcome()))
	a.logs.api.LogAttrs(ctx, slog.LevelInfo, "subscription ended", attrs...)
}
