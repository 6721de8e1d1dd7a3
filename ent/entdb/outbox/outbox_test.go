package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// clock is a settable clock shared by the instances of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mustOpen opens another pool on dsn (another instance), closed when tb ends.
func mustOpen(tb testing.TB, dsn string) *entdb.DB {
	tb.Helper()
	db, err := entdb.OpenMigrated(context.Background(), dsn, entdb.Pool{}, nil)
	if err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// mustAdd writes a row of kind in a transaction of its own and commits it.
func mustAdd(tb testing.TB, o *Outbox, db *entdb.DB, kind, payload string) Row {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.Client.Tx(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := o.Add(ctx, tx.Client(), kind, []byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return r
}

func rowsLeft(tb testing.TB, db *entdb.DB) []*ent.Outbox {
	tb.Helper()
	rows, err := db.Client.Outbox.Query().All(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// Rows left by writers that died are delivered by the workers of every
// instance at once, each row exactly once (while every delivery succeeds):
// on PostgreSQL claims skip each other's locked rows, on SQLite they take
// turns at the write lock.
func TestWorkersDeliverEachRowOnce(t *testing.T) {
	t.Parallel()
	dsn := entdbtest.DSN(t)
	writerDB := mustOpen(t, dsn)
	// The writer's clock is a minute behind: its leases have run out, as
	// if it died after committing.
	writer := New(writerDB.Client, writerDB.Dialect, Config{Now: func() time.Time { return time.Now().Add(-time.Minute) }})
	writer.Handle("k", func(context.Context, []byte) error { return nil })
	const rows = 300
	for i := range rows {
		mustAdd(t, writer, writerDB, "k", fmt.Sprint(i))
	}

	var (
		mu        sync.Mutex
		delivered = map[string]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		db := mustOpen(t, dsn)
		w := New(db.Client, db.Dialect, Config{Poll: 5 * time.Millisecond})
		w.Handle("k", func(_ context.Context, p []byte) error {
			mu.Lock()
			delivered[string(p)]++
			mu.Unlock()
			return nil
		})
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	for deadline := time.Now().Add(30 * time.Second); len(rowsLeft(t, writerDB)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows still undelivered after 30 s", len(rowsLeft(t, writerDB)))
		}
	}
	cancel()
	wg.Wait()
	if got := len(delivered); got != rows {
		t.Errorf("%d payloads delivered, want %d", got, rows)
	}
	for p, n := range delivered {
		if n != 1 {
			t.Errorf("payload %s delivered %d times, want once", p, n)
		}
	}
}

// Instances claiming at the same moment take disjoint rows.
func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	t.Parallel()
	dsn := entdbtest.DSN(t)
	writerDB := mustOpen(t, dsn)
	writer := New(writerDB.Client, writerDB.Dialect, Config{Now: func() time.Time { return time.Now().Add(-time.Minute) }})
	writer.Handle("k", func(context.Context, []byte) error { return nil })
	for i := range 3 * batchSize {
		mustAdd(t, writer, writerDB, "k", fmt.Sprint(i))
	}
	claimers := make([]*Outbox, 6)
	for i := range claimers {
		db := mustOpen(t, dsn)
		claimers[i] = New(db.Client, db.Dialect, Config{})
		claimers[i].Handle("k", func(context.Context, []byte) error { return nil })
	}
	claimed := map[int]string{}
	for round := 0; len(claimed) < 3*batchSize; round++ {
		if round == 20 {
			t.Fatalf("%d of %d rows claimed after 20 rounds", len(claimed), 3*batchSize)
		}
		start := make(chan struct{})
		got := make([][]*ent.Outbox, len(claimers))
		errs := make([]error, len(claimers))
		var wg sync.WaitGroup
		for i, c := range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = c.claim(context.Background(), backingOffToo)
			}()
		}
		close(start)
		wg.Wait()
		for i, rows := range got {
			if errs[i] != nil && !entdb.IsUnavailable(errs[i]) { // SQLite: a claimer may find the lock busy
				t.Fatalf("claim: %v", errs[i])
			}
			for _, r := range rows {
				if by, ok := claimed[r.ID]; ok {
					t.Fatalf("row %d claimed by %s and again by %s", r.ID, by, claimers[i].id)
				}
				claimed[r.ID] = claimers[i].id
			}
		}
	}
}

// The writer delivers its own row after the commit and the row is gone; a
// failed fast path hands the row to the workers, who retry it with backoff
// until the dependency answers, recording each failure.
func TestFastPathThenRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	clk := &clock{t: time.Now().UTC()}
	fail := errors.New("redis: i/o timeout")
	var (
		mu       sync.Mutex
		failures = 0
		got      []string
	)
	o := New(db.Client, db.Dialect, Config{Now: clk.Now})
	o.Handle("k", func(_ context.Context, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return fail
		}
		got = append(got, string(p))
		return nil
	})
	ctx := context.Background()

	o.Deliver(ctx, mustAdd(t, o, db, "k", "fast"))
	if n := len(rowsLeft(t, db)); n != 0 {
		t.Fatalf("%d rows left after a successful fast path, want 0", n)
	}

	failures = 3
	o.Deliver(ctx, mustAdd(t, o, db, "k", "slow"))
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		rows := rowsLeft(t, db)
		if len(rows) != 1 {
			t.Fatalf("after %d failures: %d rows, want 1", i+1, len(rows))
		}
		r := rows[0]
		if got, want := r.Attempts, i+1; got != want {
			t.Errorf("attempts=%d, want %d", got, want)
		}
		if r.ClaimedUntil != nil || r.ClaimedBy != "" {
			t.Errorf("after failure %d the row is still claimed by %q until %v", i+1, r.ClaimedBy, r.ClaimedUntil)
		}
		if got := r.NextAttemptAt.Sub(clk.Now()); got < want-time.Millisecond || got > want {
			t.Errorf("after failure %d: next attempt in %v, want %v", i+1, got, want)
		}
		if r.LastError != fail.Error() {
			t.Errorf("last_error=%q, want %q", r.LastError, fail.Error())
		}
		o.sweep(ctx, dueRows) // not due yet: nothing happens
		if got := rowsLeft(t, db)[0].Attempts; got != i+1 {
			t.Fatalf("a sweep before the backoff ran out attempted the row (attempts=%d)", got)
		}
		clk.Advance(want)
		o.sweep(ctx, dueRows)
	}
	if n := len(rowsLeft(t, db)); n != 0 {
		t.Fatalf("%d rows left after the dependency came back, want 0", n)
	}
	if want := []string{"fast", "slow"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// A row whose writer died before delivering it (after its commit) is left
// alone while the writer's lease holds, then delivered by another instance.
// An instance takes only the kinds it has a handler for.
func TestOtherInstanceDeliversAfterWriterLease(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	clk := &clock{t: time.Now().UTC()}
	ctx := context.Background()
	writer := New(db.Client, db.Dialect, Config{Now: clk.Now})
	writer.Handle("k", func(context.Context, []byte) error { return nil })
	writer.Handle("mail", func(context.Context, []byte) error { return nil })
	mustAdd(t, writer, db, "k", "x") // and the writer dies: no Deliver
	mustAdd(t, writer, db, "mail", "m")

	var got []string
	other := New(db.Client, db.Dialect, Config{Now: clk.Now})
	other.Handle("k", func(_ context.Context, p []byte) error { got = append(got, string(p)); return nil })
	other.sweep(ctx, backingOffToo)
	if len(got) != 0 {
		t.Fatalf("delivered %v while the writer's lease held", got)
	}
	clk.Advance(WriterLease + time.Millisecond)
	other.sweep(ctx, dueRows)
	if fmt.Sprint(got) != "[x]" {
		t.Fatalf("delivered %v after the writer's lease, want [x]", got)
	}
	rows := rowsLeft(t, db)
	if len(rows) != 1 || rows[0].Kind != "mail" {
		t.Fatalf("left %v, want only the mail row (no handler here)", rows)
	}
}

// After a failure the rest of the batch's rows of that kind wait with the
// failed one instead of each waiting out its own timeout; Kick retries at
// once, backoff or not.
func TestFailedKindWaitsAndKickRetries(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	clk := &clock{t: time.Now().UTC()}
	ctx := context.Background()
	down := true
	calls := 0
	o := New(db.Client, db.Dialect, Config{Now: clk.Now})
	o.Handle("k", func(context.Context, []byte) error {
		calls++
		if down {
			return errors.New("down")
		}
		return nil
	})
	for i := range 5 {
		mustAdd(t, o, db, "k", fmt.Sprint(i))
	}
	clk.Advance(WriterLease + time.Millisecond)
	o.sweep(ctx, dueRows)
	if calls != 1 {
		t.Fatalf("%d attempts with the dependency down, want 1 (the others wait)", calls)
	}
	for _, r := range rowsLeft(t, db) {
		if !r.NextAttemptAt.After(clk.Now()) {
			t.Errorf("row %d is due again at once", r.ID)
		}
	}
	down = false
	o.sweep(ctx, dueRows)
	if n := len(rowsLeft(t, db)); n != 5 {
		t.Fatalf("%d rows left before the backoff ran out, want 5", n)
	}
	o.sweep(ctx, backingOffToo) // what Kick does
	if n := len(rowsLeft(t, db)); n != 0 {
		t.Fatalf("%d rows left after a kick with the dependency back, want 0", n)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d)=%v, want %v", n, got, want)
		}
	}
	if got := Backoff(1000); got != MaxBackoff {
		t.Errorf("Backoff(1000)=%v, want %v", got, MaxBackoff)
	}
}

func TestAddRefusesUnhandledKind(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	o := New(db.Client, db.Dialect, Config{})
	if _, err := o.Add(context.Background(), db.Client, "mail", nil); err == nil {
		t.Fatal("Add accepted a kind nothing delivers")
	}
}
