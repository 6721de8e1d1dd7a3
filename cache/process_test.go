package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/cost"
)

// process is one process's tiers of cfg over r, with its bus running and
// synced; stop ends the bus's subscription.
func process(t *testing.T, r *cachetest.Redis, cfg cache.TierConfig) (tiers *cache.Tiers, b *bus.Bus, stop func()) {
	t.Helper()
	rdb := cachetest.Open(t, r.Config)
	rdb.AddHook(cost.Hook{})
	b = bus.New(rdb, r.Prefix, nil)
	tiers = cache.NewTiers(rdb, b, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	waitFor(t, "bus synced", b.Synced)
	return tiers, b, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
