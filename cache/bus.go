package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bus carries events every process must apply before it may trust what it
// keeps in memory: revoked sessions (auth) and invalidated user records
// (the in-process cache tier). It is Redis pub/sub with two guarantees
// plain pub/sub lacks:
//
//   - Nothing is silently missed. A process is "synced" only once its
//     subscription is confirmed and every OnSync hook (replaying a log,
//     clearing a cache) has run, and only while pings on the subscription's
//     own connection keep coming back (within 500 ms). Callers must not
//     trust memory when Synced is false.
//   - Publish returns once every other synced process has applied the event
//     (each acknowledges it), or after AckTimeout: a mutation that publishes
//     an event returns after every live instance has seen it, so the next
//     read anywhere reflects it.
//
// Processes announce themselves in a sorted set while synced, so a
// publisher knows whose acknowledgements to wait for.
type Bus struct {
	rdb       redis.UniversalClient
	channel   string
	instances string
	id        string
	log       *slog.Logger

	mu       sync.RWMutex
	handlers map[string]func(payload string)
	syncs    []func(ctx context.Context) error

	// alive is the UnixNano send time of the last answered ping (every
	// message published before it has been applied), 0 when not synced.
	alive atomic.Int64

	waitMu  sync.Mutex
	waiting map[string]*ackWait

	acks chan string // acknowledgements to send, off the receive loop
}

type ackWait struct {
	need map[string]bool
	done chan struct{}
}

// Tuning of the bus.
const (
	busPing        = 100 * time.Millisecond
	busStaleness   = 500 * time.Millisecond
	busHeartbeat   = time.Second
	busInstanceTTL = 3 * time.Second
	// AckTimeout bounds how long Publish waits for other processes.
	AckTimeout = 250 * time.Millisecond
)

// NewBus returns a bus over rdb. Keys: <prefix>bus (the channel) and
// <prefix>bus:instances (synced processes, scored by last heartbeat).
func NewBus(rdb redis.UniversalClient, prefix string, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{
		rdb: rdb, channel: prefix + "bus", instances: prefix + "bus:instances",
		id: strings.ToLower(rand.Text()[:16]), log: log,
		handlers: map[string]func(string){}, waiting: map[string]*ackWait{},
		acks: make(chan string, 1024),
	}
}

// Handle registers the function that applies events of a topic. Register
// before Run.
func (b *Bus) Handle(topic string, fn func(payload string)) {
	b.mu.Lock()
	b.handlers[topic] = fn
	b.mu.Unlock()
}

// OnSync registers a hook run after every (re)subscription, before the
// process counts as synced: replay what may have been missed, or forget
// what may be stale.
func (b *Bus) OnSync(fn func(ctx context.Context) error) {
	b.mu.Lock()
	b.syncs = append(b.syncs, fn)
	b.mu.Unlock()
}

// Synced reports whether memory kept up to date by this bus can be trusted
// right now.
func (b *Bus) Synced() bool {
	a := b.alive.Load()
	return a != 0 && time.Since(time.Unix(0, a)) < busStaleness
}

// Publish sends an event, applies it in this process, and waits until
// every other synced process has applied it (or AckTimeout passed; a
// process that cannot answer stops trusting its memory within 500 ms
// anyway). The payload must not contain a newline.
func (b *Bus) Publish(ctx context.Context, topic, payload string) error {
	now := time.Now()
	peers, err := b.rdb.ZRangeByScore(ctx, b.instances, &redis.ZRangeBy{
		Min: strconv.FormatInt(now.Add(-busInstanceTTL).UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return fmt.Errorf("bus peers: %w", err)
	}
	nonce := strings.ToLower(rand.Text()[:16])
	w := &ackWait{need: map[string]bool{}, done: make(chan struct{})}
	for _, p := range peers {
		if p != b.id {
			w.need[p] = true
		}
	}
	wait := len(w.need) > 0 // w.need belongs to the receive loop once registered
	if wait {
		b.waitMu.Lock()
		b.waiting[nonce] = w
		b.waitMu.Unlock()
		defer func() {
			b.waitMu.Lock()
			delete(b.waiting, nonce)
			b.waitMu.Unlock()
		}()
	}
	if err := b.rdb.Publish(ctx, b.channel, "m "+nonce+" "+b.id+" "+topic+" "+payload).Err(); err != nil {
		return fmt.Errorf("bus publish: %w", err)
	}
	b.apply(topic, payload)
	if !wait {
		return nil
	}
	select {
	case <-w.done:
	case <-time.After(AckTimeout):
		b.waitMu.Lock()
		missing := make([]string, 0, len(w.need))
		for p := range w.need {
			missing = append(missing, p)
		}
		b.waitMu.Unlock()
		b.log.WarnContext(ctx, "bus event not acknowledged in time", slog.String("topic", topic), slog.Any("instances", missing))
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Broadcast sends an event to every process, applying it in this one at
// once, without waiting for anyone: for notifications (live updates) that
// nothing's correctness depends on. The payload must not contain a newline.
func (b *Bus) Broadcast(ctx context.Context, topic, payload string) error {
	if err := b.rdb.Publish(ctx, b.channel, "m - "+b.id+" "+topic+" "+payload).Err(); err != nil {
		return fmt.Errorf("bus broadcast: %w", err)
	}
	b.apply(topic, payload)
	return nil
}

func (b *Bus) apply(topic, payload string) {
	b.mu.RLock()
	fn := b.handlers[topic]
	b.mu.RUnlock()
	if fn != nil {
		fn(payload)
	}
}

func (b *Bus) receive(msg string) {
	kind, rest, _ := strings.Cut(msg, " ")
	switch kind {
	case "m":
		f := strings.SplitN(rest, " ", 4)
		if len(f) < 3 {
			b.log.Warn("bus: malformed message", slog.String("message", msg))
			return
		}
		nonce, from, topic, payload := f[0], f[1], f[2], ""
		if len(f) == 4 {
			payload = f[3]
		}
		if from == b.id {
			return // applied when published
		}
		b.apply(topic, payload)
		if nonce == "-" {
			return // a broadcast: nobody waits
		}
		select {
		case b.acks <- "a " + nonce + " " + b.id:
		default:
			b.log.Warn("bus: acknowledgement queue full")
		}
	case "a":
		nonce, from, _ := strings.Cut(rest, " ")
		b.waitMu.Lock()
		if w := b.waiting[nonce]; w != nil && w.need[from] {
			delete(w.need, from)
			if len(w.need) == 0 {
				close(w.done)
			}
		}
		b.waitMu.Unlock()
	}
}

// Run keeps the subscription until ctx ends. go-redis reconnects a broken
// subscription by itself and resubscribes; every (re)subscription is
// confirmed by a subscribe message, on which the OnSync hooks run.
func (b *Bus) Run(ctx context.Context) {
	ps := b.rdb.Subscribe(ctx, b.channel)
	defer ps.Close()
	// A blocked read does not watch ctx: closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() {
		b.alive.Store(0)
		b.rdb.ZRem(context.WithoutCancel(ctx), b.instances, b.id)
	}()
	go b.background(ctx, ps)
	synced := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				continue // staleness is judged by the pings
			}
			if synced {
				b.log.Warn("bus subscription lost: memory not trusted until it is back", slog.Any("error", err))
			}
			synced = false
			b.alive.Store(0)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			sent := time.Now()
			if err := b.runSyncs(ctx); err != nil {
				b.log.Warn("bus: sync hook failed; not synced", slog.Any("error", err))
				synced = false
				continue
			}
			synced = true
			b.alive.Store(sent.UnixNano())
			b.heartbeat(ctx)
		case *redis.Message:
			for _, line := range strings.Split(m.Payload, "\n") {
				b.receive(line)
			}
		case *redis.Pong:
			if !synced {
				continue
			}
			if ns, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && ns > b.alive.Load() {
				b.alive.Store(ns)
			}
		}
	}
}

func (b *Bus) runSyncs(ctx context.Context) error {
	b.mu.RLock()
	syncs := append([]func(context.Context) error(nil), b.syncs...)
	b.mu.RUnlock()
	for _, fn := range syncs {
		if err := fn(ctx); err != nil {
			return err
		}
	}
	return nil
}

// background pings the subscription, sends acknowledgements and keeps
// this process's heartbeat while it is synced.
func (b *Bus) background(ctx context.Context, ps *redis.PubSub) {
	ping := time.NewTicker(busPing)
	defer ping.Stop()
	beat := time.NewTicker(busHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			// Pings go out on the subscription's own connection, so their
			// answers come back in order with the messages.
			_ = ps.Ping(ctx, strconv.FormatInt(time.Now().UnixNano(), 10))
		case <-beat.C:
			if b.Synced() {
				b.heartbeat(ctx)
			}
		case ack := <-b.acks:
			if err := b.rdb.Publish(ctx, b.channel, ack).Err(); err != nil {
				b.log.Warn("bus: acknowledge", slog.Any("error", err))
			}
		}
	}
}

func (b *Bus) heartbeat(ctx context.Context) {
	now := time.Now()
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, b.instances, redis.Z{Score: float64(now.UnixMilli()), Member: b.id})
		p.ZRemRangeByScore(ctx, b.instances, "-inf", strconv.FormatInt(now.Add(-10*busInstanceTTL).UnixMilli(), 10))
		return nil
	})
	if err != nil {
		b.log.Warn("bus heartbeat", slog.Any("error", err))
	}
}
