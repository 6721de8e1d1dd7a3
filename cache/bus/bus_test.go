package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// busProcess is one process's bus and what its handler applied.
type busProcess struct {
	bus *bus.Bus

	mu      sync.Mutex
	applied map[string]bool
}

func (p *busProcess) has(payload string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied[payload]
}

// startBus runs a bus over a new client to cfg until the test ends.
func startBus(t *testing.T, r *cachetest.Redis, cfg rdb.Config) *busProcess {
	t.Helper()
	p := &busProcess{bus: bus.New(cachetest.Open(t, cfg), r.Prefix, nil), applied: map[string]bool{}}
	p.bus.Handle("t", func(payload string) {
		p.mu.Lock()
		p.applied[payload] = true
		p.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.bus.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func waitBusSynced(t *testing.T, ps ...*busProcess) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range ps {
		for !p.bus.Synced() {
			if time.Now().After(deadline) {
				t.Fatal("bus never synced")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// singleNode returns the Redis of the test, skipping when it is a cluster
// or behind Sentinel (a proxy can stand in front of one node only).
func singleNode(t *testing.T) *cachetest.Redis {
	t.Helper()
	r := cachetest.New(t)
	if r.Config.URL == "" {
		t.Skip("a proxy stands in front of a single Redis node only")
	}
	return r
}

// Publish returns once every synced peer has applied the event.
func TestBusPublishWaitsForPeers(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	a, b, c := startBus(t, r, r.Config), startBus(t, r, r.Config), startBus(t, r, r.Config)
	waitBusSynced(t, a, b, c)
	for i := range 20 {
		ev := fmt.Sprint("e", i)
		if err := a.bus.Publish(context.Background(), "t", ev); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*busProcess{a, b, c} {
			if !p.has(ev) {
				t.Fatalf("event %s not applied by every process when Publish returned", ev)
			}
		}
	}
}

// The bus's central promise: once Publish has returned, a peer that has not
// applied the event does not count itself synced, however long it was
// paused (its connections frozen: no byte in or out).
func TestBusPausedPeerIsNotSyncedAfterPublishReturns(t *testing.T) {
	t.Parallel()
	r := singleNode(t)
	a := startBus(t, r, r.Config)
	proxy := cachetest.NewProxy(t, r.Config.URL)
	b := startBus(t, r, rdb.Config{URL: proxy.URL})
	for _, pause := range []time.Duration{100, 200, 300, 400, 450, 500, 550, 600, 800} {
		pause *= time.Millisecond
		t.Run(pause.String(), func(t *testing.T) {
			waitBusSynced(t, a, b)
			ev := "pause-" + pause.String()
			proxy.Freeze()
			thawed := make(chan struct{})
			go func() { time.Sleep(pause); proxy.Thaw(); close(thawed) }()
			start := time.Now()
			if err := a.bus.Publish(context.Background(), "t", ev); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if b.bus.Synced() && !b.has(ev) {
				t.Errorf("Publish returned after %v; the peer paused for %v counts itself synced without the event", took, pause)
			}
			if took > bus.AckTimeout+250*time.Millisecond {
				t.Errorf("Publish took %v, want at most about AckTimeout (%v)", took, bus.AckTimeout)
			}
			<-thawed
			// Once thawed, the peer applies the event and syncs again.
			deadline := time.Now().Add(5 * time.Second)
			for !b.has(ev) {
				if time.Now().After(deadline) {
					t.Fatal("the event never reached the thawed peer")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// A process that joins while an event is being published either is waited
// for or replays what it missed: it never counts itself synced without it.
// Here the OnSync hook reads a log the publisher writes before publishing,
// as the revocation log is used.
func TestBusJoiningPeerMissesNothing(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	a := startBus(t, r, r.Config)
	waitBusSynced(t, a)
	logKey := r.Prefix + "log"
	for i := range 10 {
		ev := fmt.Sprint("j", i)
		p := &busProcess{bus: bus.New(cachetest.Open(t, r.Config), r.Prefix, nil), applied: map[string]bool{}}
		apply := func(payload string) {
			p.mu.Lock()
			p.applied[payload] = true
			p.mu.Unlock()
		}
		p.bus.Handle("t", apply)
		p.bus.OnSync(func(ctx context.Context) error {
			evs, err := r.Client.SMembers(ctx, logKey).Result()
			for _, e := range evs {
				apply(e)
			}
			return err
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.bus.Run(ctx) }()
		if err := r.Client.SAdd(context.Background(), logKey, ev).Err(); err != nil {
			t.Fatal(err)
		}
		if err := a.bus.Publish(context.Background(), "t", ev); err != nil {
			t.Fatal(err)
		}
		waitBusSynced(t, p)
		if !p.has(ev) {
			t.Errorf("a process joining during the event counts itself synced without it")
		}
		cancel()
		<-done
	}
}
