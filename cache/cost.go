package cache

import (
	"context"
	"net"
	"sync/atomic"

	"entgo.io/ent/dialect"
	"github.com/redis/go-redis/v9"
)

// Cost counts what one request costs the backing services: SQL statements
// and Redis round trips (a pipeline is one). The graph layer reports it in
// extensions.cost; tests assert on it.
type Cost struct {
	SQL   atomic.Int64
	Redis atomic.Int64
	// AuthRedis is the part of Redis spent authenticating the request.
	AuthRedis atomic.Int64
}

type costKey struct{}

// WithCost returns a context that accumulates the cost of what runs in it.
func WithCost(ctx context.Context) (context.Context, *Cost) {
	c := &Cost{}
	return context.WithValue(ctx, costKey{}, c), c
}

// CostFrom returns the request's cost counters, or nil.
func CostFrom(ctx context.Context) *Cost {
	c, _ := ctx.Value(costKey{}).(*Cost)
	return c
}

// CostHook counts Redis round trips into the request's Cost. Add it to the
// client with AddHook.
type CostHook struct{}

var _ redis.Hook = CostHook{}

// DialHook implements redis.Hook.
func (CostHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook.
func (CostHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c := CostFrom(ctx); c != nil {
			c.Redis.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (CostHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c := CostFrom(ctx); c != nil {
			c.Redis.Add(1)
		}
		return next(ctx, cmds)
	}
}

// CountSQL wraps an ent driver so that every statement (in or out of a
// transaction) is counted into the request's Cost.
func CountSQL(d dialect.Driver) dialect.Driver { return &countingDriver{Driver: d} }

type countingDriver struct{ dialect.Driver }

func count(ctx context.Context) {
	if c := CostFrom(ctx); c != nil {
		c.SQL.Add(1)
	}
}

func (d *countingDriver) Exec(ctx context.Context, query string, args, v any) error {
	count(ctx)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *countingDriver) Query(ctx context.Context, query string, args, v any) error {
	count(ctx)
	return d.Driver.Query(ctx, query, args, v)
}

func (d *countingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx}, nil
}

type countingTx struct{ dialect.Tx }

func (t *countingTx) Exec(ctx context.Context, query string, args, v any) error {
	count(ctx)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *countingTx) Query(ctx context.Context, query string, args, v any) error {
	count(ctx)
	return t.Tx.Query(ctx, query, args, v)
}
