package rdb

import (
	"testing"
	"time"
)

// Waits that overlap count once: the budget is the union of the waits,
// so every command in flight together ends by the same moment, and time
// between commands is not spent.
func TestRedisBudgetCountsOverlapOnce(t *testing.T) {
	b := &redisBudget{limit: 250 * time.Millisecond}
	t0 := time.Unix(1_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	d1, ok1 := b.enter(at(0))
	d2, ok2 := b.enter(at(100))
	if !ok1 || !ok2 {
		t.Fatal("a fresh budget refused a command")
	}
	if !d1.Equal(at(250)) || !d2.Equal(at(250)) {
		t.Errorf("deadlines %v and %v, want both at 250 ms", d1.Sub(t0), d2.Sub(t0))
	}
	b.leave(at(120))
	b.leave(at(150)) // one span, 0 to 150 ms
	d3, ok := b.enter(at(1000))
	if !ok {
		t.Fatal("budget spent after 150 ms of 250")
	}
	if got, want := d3.Sub(at(1000)), 100*time.Millisecond; got != want {
		t.Errorf("left after 150 ms waited: %v, want %v", got, want)
	}
	b.leave(at(1100))
	if _, ok := b.enter(at(1101)); ok {
		t.Error("a command started after the whole budget was waited")
	}
}
