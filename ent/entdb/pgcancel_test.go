package entdb_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// A statement whose context ends (a client that went away) is cancelled on
// the server, and its connection goes back to the pool: the pool opens no
// new one for the next statement.
func TestCancelledStatementKeepsItsConnection(t *testing.T) {
	db := openPG(t, 1)
	if _, err := db.SQL.ExecContext(t.Context(), `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	opened := db.ConnectionsOpened()
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		start := time.Now()
		_, err := db.SQL.ExecContext(ctx, `SELECT pg_sleep(5)`)
		cancel()
		if err == nil {
			t.Fatal("pg_sleep(5) outlived its 50 ms context")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("the cancelled statement took %v to end", d)
		}
		var one int
		if err := db.SQL.QueryRowContext(t.Context(), `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Fatalf("after a cancelled statement: %d, %v", one, err)
		}
	}
	if got := db.ConnectionsOpened(); got != opened {
		t.Errorf("the pool opened %d connections for 3 cancelled statements, want none", got-opened)
	}
}

// A statement whose context has ended before it reaches pgx (a client that
// went away as its request took a connection) costs no connection: pgx
// sends nothing and says so with an error database/sql would take for a
// broken connection.
func TestEndedContextKeepsItsConnection(t *testing.T) {
	db := openPG(t, 4)

	t.Run("on one connection", func(t *testing.T) {
		// database/sql's Conn hands the ended context to the driver as it is.
		conn, err := db.SQL.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ended, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := conn.ExecContext(ended, `SELECT 1`); !errors.Is(err, context.Canceled) {
			t.Errorf("exec with an ended context: %v, want context.Canceled", err)
		}
		if _, err := conn.QueryContext(ended, `SELECT 1`); !errors.Is(err, context.Canceled) {
			t.Errorf("query with an ended context: %v, want context.Canceled", err)
		}
		var one int
		if err := conn.QueryRowContext(t.Context(), `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Fatalf("the connection after two ended contexts: %d, %v", one, err)
		}
	})

	t.Run("in a transaction", func(t *testing.T) {
		// A pool of one: a transaction's connection is taken again only
		// once it is back, not while database/sql still rolls it back.
		db := openPG(t, 1)
		conn, err := db.SQL.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ended, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := conn.BeginTx(ended, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("begin with an ended context: %v, want context.Canceled", err)
		}
		_ = conn.Close()

		// database/sql rolls back a transaction as its context ends.
		for range 3 {
			ctx, cancel := context.WithCancel(t.Context())
			tx, err := db.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `CREATE TEMPORARY TABLE gone (n int)`); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := tx.Commit(); err == nil {
				t.Fatal("a transaction committed after its context ended")
			}
		}
		// Each was rolled back: its table is not there, and the connection
		// was in no transaction when taken again (pgx would discard it).
		var n int
		if err := db.SQL.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'gone'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("after three abandoned transactions: %d tables, %v", n, err)
		}
		if got := db.ConnectionsOpened(); got != 1 {
			t.Errorf("the pool opened %d connections for three transactions whose contexts ended, want 1", got)
		}
	})

	t.Run("under load", func(t *testing.T) {
		// Contexts end at random points of their statements: before one is
		// sent, as the pool hands a connection over, as rows are read.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 300 {
					ctx, cancel := context.WithCancel(t.Context())
					time.AfterFunc(time.Duration(rand.IntN(300))*time.Microsecond, cancel)
					if rows, err := db.SQL.QueryContext(ctx, `SELECT generate_series(1, 20)`); err == nil {
						for rows.Next() {
						}
						_ = rows.Close()
					}
					cancel()
				}
			})
		}
		wg.Wait()
		var n int
		if err := db.SQL.QueryRowContext(t.Context(), `SELECT count(*) FROM generate_series(1, 20)`).Scan(&n); err != nil || n != 20 {
			t.Fatalf("after the load: %d, %v", n, err)
		}
		if got := db.ConnectionsOpened(); got > 4 {
			t.Errorf("the pool of 4 opened %d connections for 2,400 statements whose clients went away", got)
		}
	})
}

// A statement whose client hangs up but which ends soon anyway is left to
// end: no cancel request is sent, and the connection is free as soon as the
// statement is done. A cancel request would cost the server a process and
// hold the connection another 100 ms (pgx's guard against cancelling the
// next statement), so a client sending requests and hanging up at once
// could hold the pool.
func TestShortStatementOfAGoneClientFreesItsConnectionAtOnce(t *testing.T) {
	db := openPG(t, 1)
	if _, err := db.SQL.ExecContext(t.Context(), `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	const n = 10
	start := time.Now()
	for range n {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Millisecond, cancel)
		_, _ = db.SQL.ExecContext(ctx, `SELECT pg_sleep(0.02)`) // 20 ms
		cancel()
	}
	// Each statement takes 20 ms; a cancel request would hold the
	// connection for 100 ms from the hang-up.
	if d := time.Since(start); d >= n*70*time.Millisecond {
		t.Errorf("%d statements of 20 ms whose clients hung up held the connection %v", n, d)
	}
	if got := db.ConnectionsOpened(); got != 1 {
		t.Errorf("the pool opened %d connections, want 1", got)
	}
}

// openPG opens the test database with a pool of at most maxOpen
// connections, closed with the test; it skips the test on SQLite, which
// has no connection to lose.
func openPG(t *testing.T, maxOpen int) *entdb.DB {
	t.Helper()
	dsn := entdbtest.DSN(t)
	if !strings.HasPrefix(dsn, "postgres") {
		t.Skip("PostgreSQL only (DATABASE_URL=postgres://...): SQLite has no connection to lose")
	}
	db, err := entdb.Open(t.Context(), dsn, entdb.Pool{MaxOpenConns: maxOpen}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
