package cost_test

import (
	"context"
	"sync/atomic"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// waiter records what it is told.
type waiter struct{ away, back atomic.Int64 }

func (w *waiter) Away() { w.away.Add(1) }
func (w *waiter) Back() { w.back.Add(1) }

func (w *waiter) check(t *testing.T, what string, want int64) {
	t.Helper()
	if a, b := w.away.Load(), w.back.Load(); a != want || b != want {
		t.Fatalf("%s: waiter told away %d and back %d times, want %d each", what, a, b, want)
	}
}

// A Redis round trip, one command or a pipeline, is a wait on the network;
// each is counted and told to the request's waiter (so is the handshake of
// a connection opened for the request: go-redis sends it through the hooks).
func TestRedisRoundTripsAreWaits(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	r.Client.AddHook(cost.Hook{})
	ctx, counts := cost.NewContext(context.Background())
	w := &waiter{}
	counts.SetWaiter(w)
	if err := r.Client.Set(ctx, r.Prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := r.Client.Pipeline()
	pipe.Get(ctx, r.Prefix+"k")
	pipe.Get(ctx, r.Prefix+"k")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	n := counts.Redis.Load()
	if n < 2 {
		t.Fatalf("counted %d round trips, want at least 2", n)
	}
	w.check(t, "SET and a pipeline", n)
	// Without a request, nothing is told or counted.
	if err := r.Client.Get(context.Background(), r.Prefix+"k").Err(); err != nil {
		t.Fatal(err)
	}
	w.check(t, "outside the request", n)
}

// A statement is a wait on the network on PostgreSQL, in a transaction or
// not, and not on SQLite, which runs in the process; both are counted.
// Beginning a transaction is a wait on both (SQLite's write lock); ending
// one, by commit or rollback, on PostgreSQL.
func TestStatementsAreWaitsOnlyAcrossTheNetwork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := entdb.OpenMigrated(ctx, entdbtest.DSN(t), entdb.Pool{}, cost.CountSQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rctx, counts := cost.NewContext(ctx)
	w := &waiter{}
	counts.SetWaiter(w)
	if _, err := db.Client.User.Query().Count(rctx); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Client.Tx(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.User.Query().Count(rctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if tx, err = db.Client.Tx(rctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := counts.SQL.Load(); got != 2 {
		t.Fatalf("counted %d statements, want 2", got)
	}
	want := int64(2) // two BEGINs: SQLite's write lock
	if db.Dialect == dialect.Postgres {
		want = 6 // and the two statements, the ROLLBACK and the COMMIT
	}
	w.check(t, db.Dialect, want)
}
