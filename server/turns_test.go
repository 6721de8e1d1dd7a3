package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A connection whose requests come back to back yields once its slice is
// over, and starts a new turn; one given no turn never yields. Measured on
// a clock the test moves, over real keep-alive connections.
func TestConnectionYieldsPastItsSlice(t *testing.T) {
	var clock, yields atomic.Int64
	ts := turns{slice: time.Millisecond, now: clock.Load, yield: func() { yields.Add(1) }}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(ts.take(ok))
	srv.Config.ConnContext = ts.withTurn
	srv.Start()
	defer srv.Close()
	get := func(c *http.Client, url string) {
		t.Helper()
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}
	c := srv.Client() // one keep-alive connection
	for _, step := range []struct {
		advance time.Duration
		yields  int64
	}{
		{0, 0},                      // the turn begins with the connection
		{900 * time.Microsecond, 0}, // within the slice
		{200 * time.Microsecond, 1}, // 1.1 ms into it: yields, a new turn
		{500 * time.Microsecond, 1},
		{600 * time.Microsecond, 2},
	} {
		clock.Add(int64(step.advance))
		get(c, srv.URL)
		if got := yields.Load(); got != step.yields {
			t.Fatalf("at %v: %d yields, want %d", time.Duration(clock.Load()), got, step.yields)
		}
	}
	// A second connection has its own turn, begun when it opened.
	other := &http.Client{Transport: &http.Transport{}}
	get(other, srv.URL)
	if got := yields.Load(); got != 2 {
		t.Errorf("a new connection's first request: %d yields, want still 2", got)
	}

	// Without a turn (a server not given withTurn), nothing yields.
	plain := httptest.NewServer(ts.take(ok))
	defer plain.Close()
	clock.Add(int64(time.Hour))
	get(plain.Client(), plain.URL)
	if got := yields.Load(); got != 2 {
		t.Errorf("a connection without a turn yielded: %d yields, want 2", got)
	}
}
