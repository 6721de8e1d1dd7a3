package auth

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/schema/pulid"
)

// countingHook counts the commands a Redis client sends (a pipeline
// counts each of its commands).
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// leaseInstance is one instance's limiter, on a client of its own, and the
// commands that client sent.
type leaseInstance struct {
	l    *Limiter
	sent *countingHook
}

func mustLeaseInstances(t *testing.T, k int, api Rate, now func() time.Time) []leaseInstance {
	t.Helper()
	r := cachetest.New(t)
	out := make([]leaseInstance, k)
	for i := range out {
		c := cachetest.Open(t, r.Config)
		h := &countingHook{}
		c.AddHook(h)
		out[i] = leaseInstance{l: NewLimiter(c, r.Prefix, RateLimits{API: api}, now, nil, nil), sent: h}
	}
	return out
}

// spend charges cost to user on in, failing the test on anything but
// success or a refusal.
func spend(t *testing.T, in leaseInstance, user pulid.ID, cost int) bool {
	t.Helper()
	err := in.l.API(context.Background(), user, "192.0.2.1", cost)
	var rl *RateLimitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &rl):
		if rl.Scope != RateAPI || rl.RetryAfter <= 0 {
			t.Fatalf("refusal %+v, want scope api and a positive retry", rl)
		}
		return false
	default:
		t.Fatalf("API: %v", err)
		return false
	}
}

// Two instances spending one user's budget: while a lease holds budget no
// command goes to Redis, nothing is spent that Redis did not charge, and
// the first refusal comes no earlier than the leases the other instance
// holds allow.
func TestAPILeasedBudgetAcrossInstances(t *testing.T) {
	t.Parallel()
	const n, cost = 6400, 3
	clock := &safeClock{t: time.Now()}
	ins := mustLeaseInstances(t, 2, Rate{N: n, Period: time.Hour}, clock.Now)
	user := pulid.ID("01USER")
	lease := int(n*LeaseShare) + cost // what one instance holds at most

	spent, ops, firstRefusal := 0, 0, -1
	for refused := 0; refused < 2; {
		refused = 0
		for _, in := range ins {
			if spend(t, in, user, cost) {
				spent += cost
				ops++
			} else {
				refused++
				if firstRefusal < 0 {
					firstRefusal = spent
				}
			}
		}
	}
	if spent > n {
		t.Errorf("spent=%d, want ≤ %d (the budget)", spent, n)
	}
	if min := n - (len(ins)-1)*lease; firstRefusal < min {
		t.Errorf("first refusal after %d units, want ≥ %d (budget less the other instance's lease)", firstRefusal, min)
	}
	var sent int64
	for _, in := range ins {
		sent += in.sent.n.Load()
	}
	// One lease of 64 units serves 21 operations of cost 3; the script
	// is loaded once per client (EVALSHA, then EVAL).
	if limit := int64(ops/10 + 2*len(ins) + 4); sent > limit {
		t.Errorf("%d operations sent %d Redis commands, want ≤ %d", ops, sent, limit)
	}

	// A second spent on one instance's lease costs no command.
	clock.Add(time.Hour) // the bucket is full again
	if !spend(t, ins[0], user, cost) {
		t.Fatal("refused after the budget refilled")
	}
	before := ins[0].sent.n.Load()
	for range 10 {
		if !spend(t, ins[0], user, cost) {
			t.Fatal("refused within the lease")
		}
	}
	if got := ins[0].sent.n.Load() - before; got != 0 {
		t.Errorf("10 operations within a lease sent %d Redis commands, want 0", got)
	}
}

// Over a run of moving time, in no window does a user spend more than the
// GCRA allows plus one lease per instance.
func TestAPILeaseOvershootBounded(t *testing.T) {
	t.Parallel()
	const n, period, cost = 1000, 10 * time.Second, 2
	clock := &safeClock{t: time.Now()}
	ins := mustLeaseInstances(t, 3, Rate{N: n, Period: period}, clock.Now)
	user := pulid.ID("01USER")
	start := clock.Now()
	type event struct {
		at    time.Duration
		units int
	}
	var events []event
	for step := range 600 { // 30 s in steps of 50 ms, everyone spending as fast as they are let
		for i, in := range ins {
			for j := 0; j < 20 && (step+i+j)%3 != 0; j++ {
				if spend(t, in, user, cost) {
					events = append(events, event{clock.Now().Sub(start), cost})
				}
			}
		}
		clock.Add(50 * time.Millisecond)
	}
	lease := float64(n)*LeaseShare + cost
	for _, w := range []time.Duration{0, 500 * time.Millisecond, time.Second, 5 * time.Second, 20 * time.Second} {
		allowed := float64(n) + float64(n)*w.Seconds()/period.Seconds() + float64(len(ins))*lease
		j, sum := 0, 0
		for i := range events { // the window [events[j].at, events[i].at]
			sum += events[i].units
			for events[i].at-events[j].at > w {
				sum -= events[j].units
				j++
			}
			if float64(sum) > allowed {
				t.Fatalf("window %v ending at %v: spent %d, want ≤ %.0f", w, events[i].at, sum, allowed)
			}
		}
	}
	total := 0
	for _, e := range events {
		total += e.units
	}
	if limit := n + int(30*time.Second/period)*n; total > limit {
		t.Errorf("30 s: spent %d, want ≤ %d (burst plus the rate)", total, limit)
	}
}

// Operations arriving together on one instance share one top-up, and an
// expired lease's unspent units go back to Redis: a user spending far
// below the limit from 32 connections at once is never refused, however
// often the leases expire.
func TestAPILeaseConcurrentTopUps(t *testing.T) {
	t.Parallel()
	clock := &safeClock{t: time.Now()}
	ins := mustLeaseInstances(t, 1, Rate{N: 1_000_000, Period: time.Minute}, clock.Now)
	user := pulid.ID("01USER")
	const steps = 20
	for range steps {
		var refused atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for range 5 {
					if err := ins[0].l.API(context.Background(), user, "192.0.2.1", 1); err != nil {
						refused.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := refused.Load(); n > 0 {
			t.Fatalf("%d of 160 operations refused, at 1.1 s a step, on a budget of 1,000,000 a minute", n)
		}
		clock.Add(1100 * time.Millisecond) // every lease expires
	}
	// One top-up per step (and the script's first load).
	if got, limit := ins[0].sent.n.Load(), int64(steps+2); got > limit {
		t.Errorf("%d steps sent %d Redis commands, want ≤ %d", steps, got, limit)
	}
}
