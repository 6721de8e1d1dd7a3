package rdb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// A hung Redis (SIGSTOP) costs a context its budget once: the first command
// waits until the budget is spent, every later one (alone, in a pipeline,
// or several at once) fails at once with ErrBudgetSpent, and none of them
// is retried past it.
func TestRedisBudgetBoundsAHungRedis(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	client := cachetest.Open(t, rdb.Config{URL: srv.URL})
	if err := client.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	t.Cleanup(srv.Resume)
	const budget = 200 * time.Millisecond
	ctx := rdb.WithBudget(context.Background(), budget)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = client.Get(ctx, "k").Err() }()
	}
	wg.Wait()
	first := time.Since(start)
	for i, err := range errs {
		if err == nil {
			t.Errorf("command %d on a hung Redis succeeded", i)
		}
	}
	if first < budget {
		t.Errorf("commands failed after %v, before the budget (%v) was spent", first, budget)
	}

	start = time.Now()
	if err := client.Get(ctx, "k").Err(); !errors.Is(err, rdb.ErrBudgetSpent) {
		t.Errorf("a command after the budget: err=%v, want ErrBudgetSpent", err)
	}
	cmds, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.Get(ctx, "k")
		return nil
	})
	if !errors.Is(err, rdb.ErrBudgetSpent) {
		t.Errorf("a pipeline after the budget: err=%v, want ErrBudgetSpent", err)
	}
	for _, c := range cmds {
		if !errors.Is(c.Err(), rdb.ErrBudgetSpent) {
			t.Errorf("a pipelined command after the budget: err=%v, want ErrBudgetSpent", c.Err())
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("commands after the budget took %v: they went to Redis", d)
	}
	t.Logf("five parallel commands failed after %v (budget %v); later ones at once", first.Round(time.Millisecond), budget)
}

// A healthy Redis does not notice the budget: a context runs many
// commands, each far below it.
func TestRedisBudgetLeavesHealthyRedisAlone(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	ctx := rdb.WithBudget(context.Background(), 250*time.Millisecond)
	for i := range 200 {
		if err := r.Client.Set(ctx, r.Prefix+"k", i, time.Minute).Err(); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
}

// Work that outlives its request runs without the request's budget, even
// once the request spent it.
func TestWithoutBudgetDropsASpentBudget(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	spent := rdb.WithBudget(context.Background(), time.Nanosecond)
	_ = r.Client.Ping(spent).Err() // spends the nanosecond
	if err := r.Client.Ping(spent).Err(); !errors.Is(err, rdb.ErrBudgetSpent) {
		t.Fatalf("with the spent budget: %v, want ErrBudgetSpent", err)
	}
	if err := r.Client.Ping(rdb.WithoutBudget(spent)).Err(); err != nil {
		t.Fatalf("without the budget: %v", err)
	}
}
