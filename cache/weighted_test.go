package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A Weighted cache holds at most its budget, however many entries arrive,
// and keeps nothing heavier than the whole budget.
func TestWeightedBoundedByBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const budget = 1 << 20
	c := NewWeighted(budget, func(k, v string) int { return len(k) + len(v) })
	for i := range 500 {
		c.Add(ctx, fmt.Sprint(i), strings.Repeat("x", 10_000))
	}
	if got := c.Weight(); got > budget {
		t.Errorf("weight=%d after 500 × 10 KB, want at most %d", got, budget)
	}
	if got := c.Len(); got == 0 || got > budget/10_000 {
		t.Errorf("len=%d, want between 1 and %d", got, budget/10_000)
	}

	big := NewWeighted(budget, func(k, v string) int { return len(v) })
	big.Add(ctx, "big", strings.Repeat("x", budget+1))
	big.Add(ctx, "small", "x")
	if w := big.Weight(); w > budget { // evictions done first
		t.Errorf("weight=%d with an entry over the budget, want at most %d", w, budget)
	}
	if _, ok := big.Get(ctx, "big"); ok {
		t.Error("an entry over the budget is kept")
	}
	if v, ok := big.Get(ctx, "small"); !ok || v != "x" {
		t.Errorf("small=%q, %v", v, ok)
	}
}

// An expiring Weighted cache forgets an entry its TTL after it was added;
// Remove and Purge forget at once.
func TestWeightedExpiresAndForgets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	weigh := func(k, v string) int { return len(k) + len(v) }
	c := NewExpiringWeighted(1<<20, 20*time.Millisecond, weigh)
	c.Add(ctx, "a", "1")
	if _, ok := c.Get(ctx, "a"); !ok {
		t.Fatal("a missing right after Add")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := c.Get(ctx, "a"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a still held 5 s after its 20 ms TTL")
		}
	}

	f := NewWeighted(1<<20, weigh)
	for _, k := range []string{"a", "b", "c"} {
		f.Add(ctx, k, "1")
	}
	f.Remove("a")
	if _, ok := f.Get(ctx, "a"); ok {
		t.Error("a held after Remove")
	}
	f.Purge()
	for _, k := range []string{"b", "c"} {
		if _, ok := f.Get(ctx, k); ok {
			t.Errorf("%s held after Purge", k)
		}
	}
}
