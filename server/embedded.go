package main

import (
	"context"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// embeddedRedis runs an in-process Redis-protocol server (miniredis) on a
// loopback port, so development uses exactly the go-redis code paths that
// production uses. miniredis only moves TTLs when told to, so a ticker
// advances its clock with the wall clock: sessions, blacklist entries and
// cache entries expire in development as they do on a real Redis.
func embeddedRedis(ctx context.Context) (*miniredis.Miniredis, func(), error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return m, func() { cancel(); <-done; m.Close() }, nil
}
