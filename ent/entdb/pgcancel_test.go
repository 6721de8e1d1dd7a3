package entdb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// A statement whose context ends (a client that went away) is cancelled on
// the server, and its connection goes back to the pool: the pool opens no
// new one for the next statement.
func TestCancelledStatementKeepsItsConnection(t *testing.T) {
	dsn := entdbtest.DSN(t)
	if !strings.HasPrefix(dsn, "postgres") {
		t.Skip("PostgreSQL only (DATABASE_URL=postgres://...): SQLite has no connection to lose")
	}
	db, err := entdb.Open(t.Context(), dsn, entdb.Pool{MaxOpenConns: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
