package rdb

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A request's Redis budget bounds how long the request may wait on Redis,
// all its commands together: a hung Redis (a stopped process, a stalled
// network: the socket stays open and nothing answers) costs a request the
// budget, then SERVICE_UNAVAILABLE, however many commands it would have
// sent, retries included. Time spent waiting is counted once however many
// commands overlap (the union of their waits), so parallel resolvers do
// not spend it faster than the clock moves. Each command is given a
// deadline at the end of what is left, and a command that starts once
// nothing is left fails at once with ErrBudgetSpent, without a round trip.
type redisBudget struct {
	limit time.Duration

	mu     sync.Mutex
	used   time.Duration // waited before the current span
	active int           // commands in flight
	since  time.Time     // start of the current span (active > 0)
}

type budgetKey struct{}

// WithBudget returns ctx with a Redis budget of d for every command
// sent with it (or a context derived from it) through a client of Open.
// d <= 0 returns ctx unchanged.
func WithBudget(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, budgetKey{}, &redisBudget{limit: d})
}

// WithoutBudget returns ctx without the Redis budget of its request: for
// work that goes on after the answer (a mail sent, a sign-up completed in
// the background), which no client waits for.
func WithoutBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, budgetKey{}, (*redisBudget)(nil))
}

// ErrBudgetSpent is returned by a Redis command whose request has already
// waited its whole Redis budget. It is a timeout (net.Error), as the wait
// that spent the budget was.
var ErrBudgetSpent error = budgetSpent{}

type budgetSpent struct{}

func (budgetSpent) Error() string   { return "redis: the request's redis budget is spent" }
func (budgetSpent) Timeout() bool   { return true }
func (budgetSpent) Temporary() bool { return true }

var _ net.Error = budgetSpent{}

// enter starts a command's wait and returns its deadline, or false if the
// budget is spent.
func (b *redisBudget) enter(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	used := b.used
	if b.active > 0 {
		used += now.Sub(b.since)
	}
	left := b.limit - used
	if left <= 0 {
		return time.Time{}, false
	}
	if b.active == 0 {
		b.since = now
	}
	b.active++
	return now.Add(left), true
}

// leave ends a command's wait.
func (b *redisBudget) leave(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active--
	if b.active == 0 {
		b.used += now.Sub(b.since)
	}
}

// within runs fn under the budget of ctx, if it has one.
func within(ctx context.Context, fn func(context.Context) error) error {
	b, _ := ctx.Value(budgetKey{}).(*redisBudget)
	if b == nil {
		return fn(ctx)
	}
	deadline, ok := b.enter(time.Now())
	if !ok {
		return ErrBudgetSpent
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	err := fn(ctx)
	cancel()
	b.leave(time.Now())
	return err
}

// budgetHook applies the request's Redis budget to every command and
// pipeline. It needs the client's ContextTimeoutEnabled, so the deadline
// reaches the socket, the pool wait and the retry backoff.
type budgetHook struct{}

var _ redis.Hook = budgetHook{}

func (budgetHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (budgetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := within(ctx, func(ctx context.Context) error { return next(ctx, cmd) })
		if errors.Is(err, ErrBudgetSpent) {
			cmd.SetErr(err)
		}
		return err
	}
}

func (budgetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := within(ctx, func(ctx context.Context) error { return next(ctx, cmds) })
		if errors.Is(err, ErrBudgetSpent) {
			for _, c := range cmds {
				c.SetErr(err)
			}
		}
		return err
	}
}
