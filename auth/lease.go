package auth

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/rdb"
)

// The API budget is charged without a Redis round trip per operation: an
// instance leases a slice of a bucket (LeaseShare of its N, at least the
// operation's cost) from Redis, charged there at once, and spends it
// locally until it is used up or LeaseTTL has passed. Nothing is spent
// that Redis has not charged, so the GCRA's long-run rate holds exactly.
// What leasing changes, with K instances serving one user:
//
//   - Overshoot: a lease taken before a window opens can be spent inside
//     it, so in any window of length W a user spends at most
//     N + W·N/Period + K·(N·LeaseShare + one operation's cost).
//   - Undershoot: a user may be refused on one instance while up to
//     (K−1)·(N·LeaseShare + one operation's cost) sits leased on the
//     others, for at most LeaseTTL. What an expired lease left unspent is
//     given back with the instance's next top-up for that user (lost only
//     when the user stops using the instance).
//
// Operations arriving together share one top-up: one slice per bucket and
// instance at a time, however many connections a user has.
//
// Budgets under 1/LeaseShare units are never leased ahead: each operation
// is charged in Redis, exactly as before.
const (
	LeaseShare = 0.01
	LeaseTTL   = time.Second
)

// leases are the budget slices one Limiter holds, by bucket key.
type leases struct {
	mu      sync.Mutex
	m       map[string]*lease
	sweepAt time.Time
}

type lease struct {
	units int
	until time.Time
	// topping is closed when the top-up in flight ends; nil when none is.
	// One top-up per bucket at a time: operations arriving together wait
	// for it rather than each taking a slice.
	topping chan struct{}
}

// spend takes n units from the lease of key if it holds them. Otherwise,
// if a top-up is in flight it returns the channel to wait on; else the
// caller is to top the lease up: spend hands it the units the lease still
// held (held, now the caller's) and those of an expired lease, to give
// back to Redis (refund).
func (ls *leases) spend(key string, n int, now time.Time) (ok bool, held, refund int, wait <-chan struct{}) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*lease{}
	}
	l := ls.m[key]
	if l == nil {
		l = &lease{}
		ls.m[key] = l
	}
	if l.topping == nil && !now.Before(l.until) {
		refund, l.units = l.units, 0
	}
	if l.units >= n {
		l.units -= n
		return true, 0, 0, nil
	}
	if l.topping != nil {
		return false, 0, 0, l.topping
	}
	l.topping = make(chan struct{})
	held, l.units = l.units, 0
	return false, held, refund, nil
}

// done ends the top-up of key: Redis granted g units (0: refused) for an
// operation of cost n that brought held units of its own. What is left
// stays in the lease, which runs LeaseTTL from now.
func (ls *leases) done(key string, held, g, n int, now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	close(l.topping)
	l.topping = nil
	if g == 0 {
		l.units += held
		return
	}
	l.units += held + g - n
	l.until = now.Add(LeaseTTL)
	if len(ls.m) > 1024 && now.After(ls.sweepAt) {
		for k, v := range ls.m {
			if v.topping == nil && !now.Before(v.until) {
				delete(ls.m, k) // an idle user's unspent units are not given back
			}
		}
		ls.sweepAt = now.Add(LeaseTTL)
	}
}

// leaseScript is the GCRA of gcraScript, taking a slice of a bucket at
// once: ARGV are the rate (also the burst), the period in seconds, now (as
// gcraScript), need and want. It charges as many units as fit now, up to
// want, if at least need fit. Returns {granted units, seconds until need
// fit (0 when granted)}.
var leaseScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local emission = tonumber(ARGV[2]) / rate
local now = tonumber(ARGV[3])
local need = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
local tat = tonumber(redis.call("GET", KEYS[1]) or now) - tonumber(ARGV[6]) * emission
tat = math.max(tat, now)
local fit = math.floor(rate - (tat - now) / emission + 0.001)
if fit < need then
  return {0, string.format("%.6f", tat + need * emission - rate * emission - now)}
end
local grant = math.min(want, fit)
tat = tat + grant * emission
redis.call("SET", KEYS[1], string.format("%.6f", tat), "EX", math.ceil(tat - now))
return {grant, "0"}
`)

// takeLeased charges n units to a bucket, from this instance's lease of it
// when that holds them, else by topping the lease up in Redis. Returns a
// *RateLimitError or rdb.ErrUnavailable.
func (l *Limiter) takeLeased(ctx context.Context, scope RateScope, key string, r Rate, n int) error {
	for {
		now := l.now()
		ok, held, refund, wait := l.leases.spend(key, n, now)
		if ok {
			return nil
		}
		if wait == nil {
			return l.topUp(ctx, scope, key, r, n, held, refund, now)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return rdb.Unavailable("rate limit", ctx.Err())
		}
	}
}

// topUp takes a slice of the bucket from Redis for an operation of cost n,
// which brings held units of the lease, and gives back refund units.
func (l *Limiter) topUp(ctx context.Context, scope RateScope, key string, r Rate, n, held, refund int, now time.Time) error {
	granted := 0
	defer func() { l.leases.done(key, held, granted, n, now) }()
	need := n - held
	want := max(int(float64(r.N)*LeaseShare), need)
	at := float64(now.UnixMicro()-gcraEpoch*1e6) / 1e6
	out, err := leaseScript.Run(ctx, l.rdb, []string{key}, r.N, r.Period.Seconds(),
		strconv.FormatFloat(at, 'f', 6, 64), need, want, refund).Slice()
	if err == nil && len(out) != 2 {
		err = fmt.Errorf("lease script returned %d values", len(out))
	}
	if err != nil {
		return rdb.Unavailable("rate limit", err)
	}
	g, _ := out[0].(int64)
	if g == 0 {
		wait, _ := out[1].(string)
		sec, _ := strconv.ParseFloat(wait, 64)
		return l.refuse(ctx, scope, time.Duration(sec*float64(time.Second)))
	}
	granted = int(g)
	return nil
}
