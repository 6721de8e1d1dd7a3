// Package outbox delivers work that must follow a committed database write
// (a cache invalidation, a live event, a mail) at least once, even if the
// process or the dependency fails right after the commit.
//
// The write's transaction also inserts an outbox row naming a kind and
// carrying a payload, so the row exists exactly when the write does. The
// writing instance then delivers it at once (Deliver: the fast path) and
// deletes it. If that fails, or the instance dies first, a worker in any
// instance claims the row once the writer's lease has run out and delivers
// it, retrying with backoff until it succeeds. Each kind has one handler,
// registered at start-up (Handle); every instance runs a worker (Run).
//
// Delivery is at least once: a handler may see a payload twice (a delivery
// that succeeded but whose row could not be deleted, a claim that ran out
// while its instance was stalled), so handlers must be idempotent or
// deduplicate by an id they put in the payload.
//
// It sits beside entdb, not at ent/outbox: that path is the package entc
// generates for the Outbox schema, which this one reads and writes (as
// entoutbox). It imports the ent client and nothing else of this module;
// graph records and delivers its kinds through it, server runs its worker.
package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/authql/authql/ent"
	entoutbox "github.com/authql/authql/ent/outbox"
	"github.com/authql/authql/ent/predicate"
)

// Handler delivers the payload of one row. It returns nil once the work is
// done; an error leaves the row for a later attempt. It must be harmless
// to run twice for the same payload.
type Handler func(ctx context.Context, payload []byte) error

// Config tunes an Outbox. Zero values take the defaults.
type Config struct {
	Log *slog.Logger
	// Now is the clock of leases and backoff (default time.Now). Instances
	// compare each other's leases, so their clocks must roughly agree (NTP).
	Now func() time.Time
	// Poll is how often the worker looks for rows due (default 1 s).
	Poll time.Duration
}

// Timing of delivery. A row that failed waits Backoff doubling from
// minBackoff up to MaxBackoff; the worker polls every Config.Poll; so a row
// is delivered within MaxBackoff + Poll of its dependency answering again.
const (
	// WriterLease is how long the instance that wrote a row has to deliver
	// it itself before the workers may take it.
	WriterLease = 5 * time.Second
	// MaxBackoff caps the wait between attempts.
	MaxBackoff = 4 * time.Second
	minBackoff = 500 * time.Millisecond
	// claimLease is how long a worker owns the rows it claimed; if it dies
	// (or stalls) that long, another instance delivers them.
	claimLease = 30 * time.Second
	// deliverTimeout bounds one delivery, well within claimLease.
	deliverTimeout = 10 * time.Second
	batchSize      = 100
)

// Outbox writes rows and delivers them.
type Outbox struct {
	client  *ent.Client
	dialect string
	id      string // this instance, in claimed_by
	log     *slog.Logger
	now     func() time.Time
	poll    time.Duration
	kick    chan struct{}

	mu       sync.RWMutex
	handlers map[string]Handler
	accepted map[string]bool
}

// New returns an outbox in client's database (dialect: "sqlite3" or
// "postgres", as entdb.DB.Dialect).
func New(client *ent.Client, dialect string, cfg Config) *Outbox {
	o := &Outbox{client: client, dialect: dialect, id: strings.ToLower(rand.Text()[:16]), log: cfg.Log,
		now: cfg.Now, poll: cfg.Poll, kick: make(chan struct{}, 1), handlers: map[string]Handler{},
		accepted: map[string]bool{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.poll <= 0 {
		o.poll = time.Second
	}
	return o
}

// Handle registers the handler of a kind. Register every kind before Run;
// an instance claims only rows of kinds it has a handler for, so a kind
// added in a new release is left to the instances that know it.
func (o *Outbox) Handle(kind string, h Handler) {
	o.mu.Lock()
	o.handlers[kind] = h
	o.mu.Unlock()
}

// Accept lets Add write rows of a kind this instance has no handler for
// (yet): they wait in the table, unclaimed, until an instance that handles
// the kind delivers them. For a kind whose handler another part of the
// program registers, or a later release brings.
func (o *Outbox) Accept(kind string) {
	o.mu.Lock()
	o.accepted[kind] = true
	o.mu.Unlock()
}

func (o *Outbox) handler(kind string) Handler {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.handlers[kind]
}

func (o *Outbox) kinds() []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	ks := make([]string, 0, len(o.handlers))
	for k := range o.handlers {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Row is a row written by Add, for Deliver once the transaction committed.
type Row struct {
	id      int
	kind    string
	payload []byte
}

// Add writes a row in tx (the write's own transaction), owned by this
// instance for WriterLease so that no worker delivers it while the writer
// does (Deliver, after the commit). Returns an error for a kind without a
// handler that was not accepted (Accept): nothing would ever deliver it.
func (o *Outbox) Add(ctx context.Context, tx *ent.Client, kind string, payload []byte) (Row, error) {
	o.mu.RLock()
	known := o.handlers[kind] != nil || o.accepted[kind]
	o.mu.RUnlock()
	if !known {
		return Row{}, fmt.Errorf("outbox: no handler for kind %q", kind)
	}
	now := o.clock()
	r, err := tx.Outbox.Create().SetKind(kind).SetPayload(payload).SetCreatedAt(now).SetNextAttemptAt(now).
		SetClaimedBy(o.id).SetClaimedUntil(now.Add(WriterLease)).Save(ctx)
	if err != nil {
		return Row{}, fmt.Errorf("outbox: add %s: %w", kind, err)
	}
	return Row{id: r.ID, kind: kind, payload: payload}, nil
}

// Deliver delivers a row this instance wrote, once its transaction has
// committed: the fast path. On success the row is deleted; on failure it
// is handed to the workers (retried with backoff). The write stands either
// way, so Deliver reports nothing; failures are logged.
func (o *Outbox) Deliver(ctx context.Context, r Row) {
	if r.id == 0 {
		return
	}
	o.deliver(context.WithoutCancel(ctx), &ent.Outbox{ID: r.id, Kind: r.kind, Payload: r.payload, Attempts: 1})
}

// Kick makes the worker look for rows at once, including rows still
// backing off: call it when a dependency is known to be back.
func (o *Outbox) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run delivers rows until ctx ends: every Poll, and at once after Kick.
// Rows it could not deliver stay in the table for the next attempt, here
// or in another instance.
func (o *Outbox) Run(ctx context.Context) {
	t := time.NewTicker(o.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.sweep(ctx, dueRows)
		case <-o.kick:
			o.sweep(ctx, backingOffToo)
		}
	}
}

// sweep claims and delivers batches of due rows. After a failure of a kind
// the rest of that kind's rows in the batch are put back unattempted, to
// wait as long as the failed one (the dependency is likely down, and each
// attempt would wait out its timeout), and the sweep ends.
func (o *Outbox) sweep(ctx context.Context, which rowSet) {
	for ctx.Err() == nil {
		rows, err := o.claim(ctx, which)
		if err != nil {
			if ctx.Err() == nil {
				o.log.Warn("outbox: claim rows", slog.Any("error", err))
			}
			return
		}
		failed := map[string]time.Duration{}
		for _, r := range rows {
			if wait, ok := failed[r.Kind]; ok {
				o.release(ctx, r, r.Attempts-1, wait, nil)
				continue
			}
			if !o.deliver(ctx, r) {
				failed[r.Kind] = Backoff(r.Attempts)
			}
		}
		if len(rows) < batchSize || len(failed) > 0 {
			return
		}
		which = dueRows // a backlog: later batches take only what is due
	}
}

// rowSet says which unclaimed rows a sweep takes.
type rowSet int

const (
	// dueRows are those past their backoff: a poll.
	dueRows rowSet = iota
	// backingOffToo are those still backing off as well: a dependency is
	// known to be back (Kick), so their wait is pointless.
	backingOffToo
)

// due selects the rows this instance may claim now: of a kind it handles,
// not claimed (or claimed by an instance whose lease ran out), and, for
// dueRows, past their backoff. Nil if it handles no kind.
func (o *Outbox) due(now time.Time, which rowSet) []predicate.Outbox {
	kinds := o.kinds()
	if len(kinds) == 0 {
		return nil
	}
	p := []predicate.Outbox{
		entoutbox.KindIn(kinds...),
		entoutbox.Or(entoutbox.ClaimedUntilIsNil(), entoutbox.ClaimedUntilLT(now)),
	}
	if which == dueRows {
		p = append(p, entoutbox.NextAttemptAtLTE(now))
	}
	return p
}

// claim takes up to batchSize due rows for this instance, oldest first,
// and counts the attempt. Two instances never claim the same row while a
// claim holds: on PostgreSQL the rows are locked (FOR UPDATE SKIP LOCKED,
// so claimers take disjoint rows without waiting); on SQLite the
// transaction holds the database's single write lock from its start
// (BEGIN IMMEDIATE), so claims run one after another.
func (o *Outbox) claim(ctx context.Context, which rowSet) ([]*ent.Outbox, error) {
	now := o.clock()
	due := o.due(now, which)
	if due == nil {
		return nil, nil // no kind handled here
	}
	// Most polls find nothing: ask first, outside a transaction, so an
	// idle worker never takes SQLite's write lock.
	if ok, err := o.client.Outbox.Query().Where(due...).Exist(ctx); err != nil || !ok {
		return nil, err
	}
	tx, err := o.client.Tx(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }() // a no-op once committed
	q := tx.Outbox.Query().Where(due...).Order(entoutbox.ByID()).Limit(batchSize)
	if o.dialect == dialect.Postgres {
		q.ForUpdate(sql.WithLockAction(sql.SkipLocked))
	}
	rows, err := q.All(ctx)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	ids := make([]int, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
		r.Attempts++
	}
	err = tx.Outbox.Update().Where(entoutbox.IDIn(ids...)).
		SetClaimedBy(o.id).SetClaimedUntil(now.Add(claimLease)).AddAttempts(1).Exec(ctx)
	if err != nil {
		return nil, err
	}
	return rows, tx.Commit()
}

// deliver runs the row's handler (r.Attempts counts this attempt) and
// deletes the row, or releases it for a later attempt. It reports whether
// the handler succeeded.
func (o *Outbox) deliver(ctx context.Context, r *ent.Outbox) bool {
	h := o.handler(r.Kind)
	if h == nil {
		o.release(ctx, r, r.Attempts-1, 0, nil)
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	err := h(dctx, r.Payload)
	cancel()
	if err != nil {
		o.release(ctx, r, r.Attempts, Backoff(r.Attempts), err)
		return false
	}
	if err := o.client.Outbox.DeleteOneID(r.ID).Exec(ctx); err != nil && !ent.IsNotFound(err) && ctx.Err() == nil {
		o.log.Warn("outbox: delivered, but the row could not be deleted; it will be delivered again",
			slog.String("kind", r.Kind), slog.Int("id", r.ID), slog.Any("error", err))
	}
	return true
}

// release gives a row back with its count of attempts, to be tried again
// after wait. Only this instance's claim is released: if the claim ran out
// and another instance took the row, the row is theirs.
func (o *Outbox) release(ctx context.Context, r *ent.Outbox, attempts int, wait time.Duration, cause error) {
	next := o.clock().Add(wait)
	u := o.client.Outbox.Update().Where(entoutbox.ID(r.ID), entoutbox.ClaimedBy(o.id)).
		SetAttempts(attempts).SetNextAttemptAt(next).ClearClaimedBy().ClearClaimedUntil()
	if cause != nil {
		u.SetLastError(truncate(cause.Error(), 500))
		// Logged at the first failure and then ever more rarely (2, 4, 8,
		// ... attempts): a dependency down for long must not flood the log.
		if attempts&(attempts-1) == 0 && !errors.Is(cause, context.Canceled) {
			o.log.Warn("outbox: delivery failed; it will be retried", slog.String("kind", r.Kind),
				slog.Int("attempts", attempts), slog.Duration("retry_in", wait), slog.Any("error", cause))
		}
	}
	if err := u.Exec(ctx); err != nil && ctx.Err() == nil {
		// The claim runs out by itself; the row is retried then.
		o.log.Warn("outbox: release row", slog.String("kind", r.Kind), slog.Any("error", err))
	}
}

// Backoff is how long a row waits after its n-th failed attempt: 0 before
// any, then 0.5 s doubling up to MaxBackoff.
func Backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := minBackoff
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// clock is the time as stored: UTC, in microseconds (what PostgreSQL
// keeps; SQLite compares the stored text, which orders right only in one
// zone).
func (o *Outbox) clock() time.Time { return o.now().UTC().Truncate(time.Microsecond) }
