package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
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
