// Package cost counts what one request costs the backing services: SQL
// statements (CountSQL wraps the ent driver) and Redis round trips (Hook,
// added to each Redis client). The server starts the count per request
// (NewContext); the GraphQL layer reports it in extensions.cost and the
// slow-operation log records it.
//
// It imports go-redis and ent's dialect package, nothing of this module:
// any package may import it.
package cost

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"sync/atomic"

	"entgo.io/ent/dialect"
	"github.com/redis/go-redis/v9"
)

// Counts are what one request cost the backing services: SQL statements
// and Redis round trips (a pipeline is one). The graph layer reports them
// in extensions.cost; tests assert on them.
type Counts struct {
	SQL   atomic.Int64
	Redis atomic.Int64
	// AuthRedis is the part of Redis spent authenticating the request.
	AuthRedis atomic.Int64
}

type costKey struct{}

// NewContext returns a context that accumulates the cost of what runs in
// it, and its counts.
func NewContext(ctx context.Context) (context.Context, *Counts) {
	c := &Counts{}
	return context.WithValue(ctx, costKey{}, c), c
}

// FromContext returns the request's counts, or nil.
func FromContext(ctx context.Context) *Counts {
	c, _ := ctx.Value(costKey{}).(*Counts)
	return c
}

// Hook counts Redis round trips into the request's Counts. Add it to the
// client with AddHook.
type Hook struct{}

var _ redis.Hook = Hook{}

// DialHook implements redis.Hook.
func (Hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook.
func (Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c := FromContext(ctx); c != nil {
			c.Redis.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c := FromContext(ctx); c != nil {
			c.Redis.Add(1)
		}
		return next(ctx, cmds)
	}
}

// CountSQL wraps an ent driver so that every statement (in or out of a
// transaction) is counted into the request's Counts.
func CountSQL(d dialect.Driver) dialect.Driver { return &countingDriver{Driver: d} }

type countingDriver struct{ dialect.Driver }

func count(ctx context.Context) {
	if c := FromContext(ctx); c != nil {
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

// queryContexter is what ent's ExecQuery feature (client.QueryContext)
// asks of a driver: to run a statement the caller wrote.
type queryContexter interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryContext(ctx context.Context, d any, query string, args []any) (*sql.Rows, error) {
	q, ok := d.(queryContexter)
	if !ok {
		return nil, fmt.Errorf("%T cannot run statements directly", d)
	}
	count(ctx)
	return q.QueryContext(ctx, query, args...)
}

// QueryContext runs and counts a statement the caller wrote.
func (d *countingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, d.Driver, query, args)
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

// QueryContext runs and counts a statement the caller wrote.
func (t *countingTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, t.Tx, query, args)
}
