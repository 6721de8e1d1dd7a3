// Package bus carries events between the server's processes over Redis
// pub/sub, with acknowledgements and a replay hook, so that a process
// knows when it may trust what it keeps in memory (see Bus).
//
// It imports go-redis and, of this module, cache/cost (a request waiting
// for acknowledgements tells its cost.Waiter). auth (revocations), cache
// (user-record evictions) and graph (post events) import it.
package bus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cost"
)

// Bus carries events every process must apply before it may trust what it
// keeps in memory: revoked sessions (auth) and invalidated user records
// (the in-process cache tier). It is Redis pub/sub with two guarantees
// plain pub/sub lacks:
//
//   - Nothing is silently missed. A process is "synced" only once its
//     subscription is confirmed and every OnSync hook (replaying a log,
//     clearing a cache) has run, and only while pings on the subscription's
//     own connection keep coming back. Callers must not trust memory when
//     Synced is false.
//   - Publish returns once every other synced process has applied the event
//     (each acknowledges it), or after AckTimeout: a mutation that publishes
//     an event returns after every live instance has seen it, so the next
//     read anywhere reflects it.
//
// The two meet in a lease. A process trusts its memory only for busLease
// after it sent the last ping whose answer it has read (its own monotonic
// clock). Redis answers a ping after every message it queued on that
// connection before the ping arrived, so a process that has read the answer
// to a ping sent after an event was published has applied the event. A
// publisher gives up on a silent peer only AckTimeout after Redis accepted
// the event, which is longer than busLease: by then the peer (paused,
// starved, partitioned) no longer counts itself synced, and asks Redis
// instead of its memory. No wall clock takes part.
//
// Processes announce themselves in a sorted set, scored by Redis's own clock,
// while synced, so a publisher knows whose acknowledgements to wait for; a
// process trusts its membership (and so its memory) only while its last
// announcement is fresh.
type Bus struct {
	rdb       redis.UniversalClient
	channel   string
	instances string
	id        string
	log       *slog.Logger
	// base anchors the process's monotonic clock (mono).
	base time.Time

	mu       sync.RWMutex
	handlers map[string]func(payload string)
	syncs    []func(ctx context.Context) error

	// alive is the mono time at which the last answered ping was sent
	// (every message published before then has been applied); unsynced
	// when not synced.
	alive atomic.Int64
	// joined is the mono time at which the last successful announcement
	// in the instance set was sent.
	joined atomic.Int64

	waitMu  sync.Mutex
	waiting map[string]*ackWait

	acks chan string // acknowledgements to send, off the receive loop
}

// ackWait collects the acknowledgements of one published event. Those that
// arrive before the publisher knows whom to wait for are kept in got.
type ackWait struct {
	got      map[string]bool
	need     map[string]bool
	counting bool // need is known
	done     chan struct{}
}

// Tuning of the bus. AckTimeout must exceed busLease: see Bus.
const (
	busPing = 50 * time.Millisecond
	// busLease is how long a process trusts its memory after sending a
	// ping whose answer it has read.
	busLease = 400 * time.Millisecond
	// AckTimeout bounds how long Publish waits for other processes.
	AckTimeout = 500 * time.Millisecond
	// busHeartbeat is how often a synced process announces itself; the
	// announcement counts for busInstanceTTL on Redis's clock, and the
	// process trusts it for busJoinLease on its own.
	busHeartbeat   = time.Second
	busJoinLease   = 2 * time.Second
	busInstanceTTL = 3 * time.Second
	// busLeaveTimeout bounds leaving the instance set when Run ends.
	busLeaveTimeout = 250 * time.Millisecond
)

// The lease must run out before the publisher's wait does, with a margin
// for clock rates; likewise a process's trust in its announcement.
var (
	_ = [AckTimeout - busLease - 50*time.Millisecond]struct{}{}
	_ = [busInstanceTTL - busJoinLease - 500*time.Millisecond]struct{}{}
)

// unsynced is the value of Bus.alive when the process is not synced.
const unsynced = math.MinInt64

// New returns a bus over rdb. Keys: <prefix>bus (the channel) and
// <prefix>bus:instances (synced processes, scored by last heartbeat).
func New(rdb redis.UniversalClient, prefix string, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		rdb: rdb, channel: prefix + "bus", instances: prefix + "bus:instances",
		id: strings.ToLower(rand.Text()[:16]), log: log, base: time.Now(),
		handlers: map[string]func(string){}, waiting: map[string]*ackWait{},
		acks: make(chan string, 1024),
	}
	b.alive.Store(unsynced)
	b.joined.Store(unsynced)
	return b
}

// mono is the time since the bus was made, on the monotonic clock: a wall
// clock stepped back or forth changes nothing.
func (b *Bus) mono() int64 { return int64(time.Since(b.base)) }

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
// right now: the lease of the last answered ping and the announcement in
// the instance set are both current.
func (b *Bus) Synced() bool {
	a, j := b.alive.Load(), b.joined.Load()
	if a == unsynced || j == unsynced {
		return false
	}
	now := b.mono()
	return now-a < int64(busLease) && now-j < int64(busJoinLease)
}

// Publish sends an event, applies it in this process, and waits until
// every other synced process has applied it, or until AckTimeout after
// Redis accepted it: a process that has not answered by then has stopped
// trusting its memory (see Bus). The payload must not contain a newline.
func (b *Bus) Publish(ctx context.Context, topic, payload string) error {
	nonce := strings.ToLower(rand.Text()[:16])
	w := &ackWait{got: map[string]bool{}, need: map[string]bool{}, done: make(chan struct{})}
	b.waitMu.Lock()
	b.waiting[nonce] = w
	b.waitMu.Unlock()
	defer func() {
		b.waitMu.Lock()
		delete(b.waiting, nonce)
		b.waitMu.Unlock()
	}()
	if err := b.send(ctx, "m "+nonce+" "+b.id+" "+topic+" "+payload); err != nil {
		return fmt.Errorf("bus publish: %w", err)
	}
	// Redis has queued the event for every subscriber: the peers' leases
	// are measured against this moment.
	timeout := time.NewTimer(AckTimeout)
	defer timeout.Stop()
	b.apply(topic, payload)
	// The peers are read after the event went out: a process that joined
	// before this read is waited for, and one that joins after it replays
	// the log (written before the event) once it has joined.
	peers, err := b.peers(ctx)
	if err != nil {
		return fmt.Errorf("bus peers: %w", err)
	}
	b.waitMu.Lock()
	for _, p := range peers {
		if p != b.id && !w.got[p] {
			w.need[p] = true
		}
	}
	w.counting = true
	if len(w.need) == 0 {
		close(w.done)
	}
	b.waitMu.Unlock()
	back := cost.Away(ctx) // the request's place goes to another meanwhile
	defer back()
	select {
	case <-w.done:
	case <-timeout.C:
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

// peers returns the processes that announced themselves within
// busInstanceTTL, by Redis's clock.
func (b *Bus) peers(ctx context.Context) ([]string, error) {
	return peersScript.Run(ctx, b.rdb, []string{b.instances}, busInstanceTTL.Milliseconds()).StringSlice()
}

// Broadcast sends an event to every process, applying it in this one at
// once, without waiting for anyone: for notifications (live updates) that
// nothing's correctness depends on. The payload must not contain a newline.
func (b *Bus) Broadcast(ctx context.Context, topic, payload string) error {
	if err := b.send(ctx, "m - "+b.id+" "+topic+" "+payload); err != nil {
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
		if w := b.waiting[nonce]; w != nil {
			w.got[from] = true
			if w.counting && w.need[from] {
				delete(w.need, from)
				if len(w.need) == 0 {
					close(w.done)
				}
			}
		}
		b.waitMu.Unlock()
	}
}

// In a Redis Cluster the bus uses sharded pub/sub (SPUBLISH, SSUBSCRIBE):
// its channel lives on the one shard that owns its slot, so publisher and
// subscribers meet on one server. With plain PUBLISH a message reaches
// subscribers on other nodes over the cluster bus, after PUBLISH has
// returned and possibly after a later ping's answer: neither a publisher's
// order nor the lease (see Bus) would hold.

// send publishes msg on the bus's channel.
func (b *Bus) send(ctx context.Context, msg string) error {
	if c, ok := b.rdb.(*redis.ClusterClient); ok {
		return c.SPublish(ctx, b.channel, msg).Err()
	}
	return b.rdb.Publish(ctx, b.channel, msg).Err()
}

// subscribe subscribes to the bus's channel.
func (b *Bus) subscribe(ctx context.Context) *redis.PubSub {
	if c, ok := b.rdb.(*redis.ClusterClient); ok {
		return c.SSubscribe(ctx, b.channel)
	}
	return b.rdb.Subscribe(ctx, b.channel)
}

// Run keeps the subscription until ctx ends. go-redis reconnects a broken
// subscription by itself and resubscribes; every (re)subscription is
// confirmed by a subscribe message, on which the process syncs (and, if that
// fails, tries again with the next answered ping).
func (b *Bus) Run(ctx context.Context) {
	ps := b.subscribe(ctx)
	defer ps.Close()
	// A blocked read does not watch ctx: closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() {
		b.alive.Store(unsynced)
		b.joined.Store(unsynced)
		// Leave the instance set, so publishers stop waiting for us at
		// once; within a bound, so a hung Redis does not hold the exit
		// (the entry then ages out of the set in busInstanceTTL).
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), busLeaveTimeout)
		b.rdb.ZRem(lctx, b.instances, b.id)
		cancel()
	}()
	go b.background(ctx, ps)
	subscribed, synced := false, false
	var lastTry int64
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
			subscribed, synced = false, false
			b.alive.Store(unsynced)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				subscribed = true
				lastTry = b.mono()
				synced = b.sync(ctx)
			}
		case *redis.Message:
			for _, line := range strings.Split(m.Payload, "\n") {
				b.receive(line)
			}
		case *redis.Pong:
			if !synced {
				if subscribed && b.mono()-lastTry >= int64(busRetry) {
					lastTry = b.mono()
					synced = b.sync(ctx)
				}
				continue
			}
			// Only this loop stores alive while synced: no race.
			if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil && sent > b.alive.Load() {
				b.alive.Store(sent)
			}
		}
	}
}

// busRetry spaces attempts to sync after a failed one.
const busRetry = 250 * time.Millisecond

// sync makes this process synced: it joins the instance set first (a
// publisher that reads the set after this waits for us, and one that read
// it before wrote its log entry before the replay below reads it), then
// runs the OnSync hooks. The lease starts when the replay was sent.
func (b *Bus) sync(ctx context.Context) bool {
	b.alive.Store(unsynced)
	if !b.heartbeat(ctx) {
		return false
	}
	sent := b.mono()
	if err := b.runSyncs(ctx); err != nil {
		if ctx.Err() == nil {
			b.log.Warn("bus: sync hook failed; not synced", slog.Any("error", err))
		}
		return false
	}
	b.alive.Store(sent)
	return true
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
			// answers come back in order with the messages. The time is
			// read before sending: the lease can only start early.
			_ = ps.Ping(ctx, strconv.FormatInt(b.mono(), 10))
		case <-beat.C:
			if b.alive.Load() != unsynced {
				b.heartbeat(ctx)
			}
		case ack := <-b.acks:
			if err := b.send(ctx, ack); err != nil {
				b.log.Warn("bus: acknowledge", slog.Any("error", err))
			}
		}
	}
}

// heartbeat announces this process in the instance set, scored by Redis's
// clock (processes' clocks need not agree), and drops long-gone entries.
// It reports whether the announcement was recorded.
func (b *Bus) heartbeat(ctx context.Context) bool {
	sent := b.mono()
	err := heartbeatScript.Run(ctx, b.rdb, []string{b.instances}, b.id, (10 * busInstanceTTL).Milliseconds()).Err()
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("bus heartbeat", slog.Any("error", err))
		}
		return false
	}
	b.joined.Store(sent)
	return true
}

// heartbeatScript: KEYS[1] the instance set; ARGV[1] this process; ARGV[2]
// how old (ms) an entry is dropped.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return 1
`)

// peersScript: KEYS[1] the instance set; ARGV[1] how recent (ms) an
// announcement must be.
var peersScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
`)
