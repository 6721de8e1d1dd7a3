package bus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// busProcess is one process's bus and what its handler applied.
type busProcess struct {
	bus *bus.Bus

	mu      sync.Mutex
	applied map[string]bool
	order   []string // payloads in the order applied
}

func newBusProcess(client redis.UniversalClient, prefix string) *busProcess {
	p := &busProcess{bus: bus.New(client, prefix, nil), applied: map[string]bool{}}
	p.bus.Handle("t", p.apply)
	return p
}

func (p *busProcess) apply(payload string) {
	p.mu.Lock()
	p.applied[payload] = true
	p.order = append(p.order, payload)
	p.mu.Unlock()
}

func (p *busProcess) has(payload string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied[payload]
}

// run runs the bus until the test ends.
func (p *busProcess) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.bus.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// startBus runs a bus over a new client to cfg until the test ends.
func startBus(t *testing.T, r *cachetest.Redis, cfg rdb.Config) *busProcess {
	t.Helper()
	p := newBusProcess(cachetest.Open(t, cfg), r.Prefix)
	p.run(t)
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
			go func() { time.Sleep(pause); proxy.Thaw(); close(thawed) }() // the freeze's length is what the test varies
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

// Events reach every peer in the order their publisher sent them, whether
// broadcast or published; and Publish returning means the peers applied
// everything the publisher sent before, not only the published event.
func TestBusKeepsEachPublishersOrder(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	a, b, c := startBus(t, r, r.Config), startBus(t, r, r.Config), startBus(t, r, r.Config)
	waitBusSynced(t, a, b, c)
	var want []string
	for i := range 200 {
		ev := fmt.Sprint("o", i)
		want = append(want, ev)
		if err := a.bus.Broadcast(context.Background(), "t", ev); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, "last")
	if err := a.bus.Publish(context.Background(), "t", "last"); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*busProcess{"publisher": a, "peer b": b, "peer c": c} {
		p.mu.Lock()
		got := slices.Clone(p.order)
		p.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("%s applied %d events when Publish returned, in order %v..., want the %d sent, in order", name, len(got), got[:min(len(got), 5)], len(want))
		}
	}
}

// A peer cut off from Redis stops counting itself synced; events published
// meanwhile never reach it as messages, and once it is back it is synced
// again only after its OnSync hook replayed them from the log (written
// before each event, as the revocation log is).
func TestBusReplaysWhatAPeerMissedBeforeItSyncsAgain(t *testing.T) {
	t.Parallel()
	r := singleNode(t)
	a := startBus(t, r, r.Config)
	proxy := cachetest.NewProxy(t, r.Config.URL)
	client := cachetest.Open(t, rdb.Config{URL: proxy.URL})
	b := newBusProcess(client, r.Prefix)
	logKey := r.Prefix + "log"
	var replays atomic.Int32
	b.bus.OnSync(func(ctx context.Context) error {
		evs, err := client.SMembers(ctx, logKey).Result()
		if err != nil {
			return err
		}
		replays.Add(1)
		for _, e := range evs {
			b.apply(e)
		}
		return nil
	})
	b.run(t)
	waitBusSynced(t, a, b)

	proxy.Cut()
	deadline := time.Now().Add(5 * time.Second)
	for b.bus.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("a peer cut off from Redis still counts itself synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
	missed := []string{"m0", "m1"}
	for _, ev := range missed {
		if err := r.Client.SAdd(context.Background(), logKey, ev).Err(); err != nil {
			t.Fatal(err)
		}
		if err := a.bus.Publish(context.Background(), "t", ev); err != nil {
			t.Fatal(err)
		}
		if b.has(ev) {
			t.Fatalf("event %s reached a peer cut off from Redis", ev)
		}
	}
	proxy.Resume()
	deadline = time.Now().Add(10 * time.Second)
	for !b.bus.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("the peer never synced again")
		}
		time.Sleep(time.Millisecond)
	}
	// The first moment it counts itself synced, it has what it missed.
	for _, ev := range missed {
		if !b.has(ev) {
			t.Errorf("synced again without event %s, published while it was cut off", ev)
		}
	}
	if n := replays.Load(); n < 2 {
		t.Errorf("OnSync ran %d times, want once per subscription (at least 2)", n)
	}
}
