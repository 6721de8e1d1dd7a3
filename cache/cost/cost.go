// Package cost counts what one request costs the backing services: SQL
// statements (CountSQL wraps the ent driver) and Redis round trips (Hook,
// added to each Redis client). The server starts the count per request
// (NewContext); the GraphQL layer reports it in extensions.cost and the
// slow-operation log records it. The same places tell the request's
// Waiter, if it has one, when it waits on the network.
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

	waiter Waiter
}

// Waiter hears when a request starts and stops waiting on the network: a
// Redis round trip, a statement sent to a database server (not to SQLite,
// which runs in the process), the start of a transaction (a round trip,
// or SQLite's write lock), a wait for other instances (Away). The
// server's admission (server/admit.go) lets another request run
// meanwhile. Its methods are called from any of the request's goroutines.
type Waiter interface {
	Away()
	Back()
}

// SetWaiter makes w hear of the request's waits. It must be called before
// the request's work starts (it is not synchronised).
func (c *Counts) SetWaiter(w Waiter) { c.waiter = w }

// away tells c's waiter, if any, that a wait starts, and returns it for
// back.
func (c *Counts) away() Waiter {
	if c == nil || c.waiter == nil {
		return nil
	}
	c.waiter.Away()
	return c.waiter
}

func back(w Waiter) {
	if w != nil {
		w.Back()
	}
}

// Away marks the start of a wait on the network by the request of ctx
// (one the hooks here do not see); the returned function marks its end.
func Away(ctx context.Context) (back func()) {
	w := FromContext(ctx).away()
	if w == nil {
		return func() {}
	}
	return w.Back
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
		c := FromContext(ctx)
		if c == nil {
			return next(ctx, cmd)
		}
		c.Redis.Add(1)
		defer back(c.away())
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c := FromContext(ctx)
		if c == nil {
			return next(ctx, cmds)
		}
		c.Redis.Add(1)
		defer back(c.away())
		return next(ctx, cmds)
	}
}

// CountSQL wraps an ent driver so that every statement (in or out of a
// transaction) is counted into the request's Counts. A statement sent to a
// database server is a wait on the network for the request's Waiter.
func CountSQL(d dialect.Driver) dialect.Driver {
	return &countingDriver{Driver: d, remote: d.Dialect() != dialect.SQLite}
}

type countingDriver struct {
	dialect.Driver
	remote bool
}

// count counts a statement into the request's Counts and, if it goes
// across the network, tells the request's waiter; back(count(...)) ends it.
func count(ctx context.Context, remote bool) Waiter {
	c := FromContext(ctx)
	if c == nil {
		return nil
	}
	c.SQL.Add(1)
	if !remote {
		return nil
	}
	return c.away()
}

func (d *countingDriver) Exec(ctx context.Context, query string, args, v any) error {
	defer back(count(ctx, d.remote))
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *countingDriver) Query(ctx context.Context, query string, args, v any) error {
	defer back(count(ctx, d.remote))
	return d.Driver.Query(ctx, query, args, v)
}

// queryContexter is what ent's ExecQuery feature (client.QueryContext)
// asks of a driver: to run a statement the caller wrote.
type queryContexter interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryContext(ctx context.Context, d any, remote bool, query string, args []any) (*sql.Rows, error) {
	q, ok := d.(queryContexter)
	if !ok {
		return nil, fmt.Errorf("%T cannot run statements directly", d)
	}
	defer back(count(ctx, remote))
	return q.QueryContext(ctx, query, args...)
}

// QueryContext runs and counts a statement the caller wrote.
func (d *countingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, d.Driver, d.remote, query, args)
}

// Tx begins a transaction: a wait for the request's waiter on either
// database, for the server's answer or for SQLite's write lock (BEGIN
// IMMEDIATE waits while another connection writes).
func (d *countingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	w := FromContext(ctx).away()
	tx, err := d.Driver.Tx(ctx)
	back(w)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, remote: d.remote, counts: FromContext(ctx)}, nil
}

type countingTx struct {
	dialect.Tx
	remote bool
	// counts is the request's that began the transaction: ent's Commit and
	// Rollback take no context.
	counts *Counts
}

// Commit ends the transaction: on a database server, a wait for its answer
// (and for its write to disk).
func (t *countingTx) Commit() error {
	if t.remote {
		defer back(t.counts.away())
	}
	return t.Tx.Commit()
}

// Rollback is Commit's other ending, a wait the same way.
func (t *countingTx) Rollback() error {
	if t.remote {
		defer back(t.counts.away())
	}
	return t.Tx.Rollback()
}

func (t *countingTx) Exec(ctx context.Context, query string, args, v any) error {
	defer back(count(ctx, t.remote))
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *countingTx) Query(ctx context.Context, query string, args, v any) error {
	defer back(count(ctx, t.remote))
	return t.Tx.Query(ctx, query, args, v)
}

// QueryContext runs and counts a statement the caller wrote.
func (t *countingTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return queryContext(ctx, t.Tx, t.remote, query, args)
}
