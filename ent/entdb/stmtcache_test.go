package entdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// openSQLite opens a fresh SQLite database through Open, with one
// connection so that every statement below runs on the same one.
func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"), Pool{MaxOpenConns: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.SQL.ExecContext(t.Context(), `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db.SQL
}

// cached lists the statements the connection keeps prepared.
func cached(t *testing.T, db *sql.DB) []string {
	t.Helper()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stmtCacheConn)
		if !ok {
			return fmt.Errorf("connection is a %T, not a statement-caching one", dc)
		}
		out = slices.Clone(c.order)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStatementsArePreparedOncePerConnection(t *testing.T) {
	db := openSQLite(t)
	ctx := t.Context()
	const ins, sel = `INSERT INTO kv (k, v) VALUES (?, ?)`, `SELECT v FROM kv WHERE k = ?`
	for i := range 10 {
		if _, err := db.ExecContext(ctx, ins, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := db.QueryRowContext(ctx, sel, fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("k%d = %d, %v; want %d", i, v, err, i)
		}
	}
	got := cached(t, db)
	if count(got, ins) != 1 || count(got, sel) != 1 || len(got) != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
		t.Fatalf("cached statements %q: want each once", got)
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, s := range xs {
		if s == x {
			n++
		}
	}
	return n
}

// A statement whose rows are still open is not reset under them: the same
// query again on the same connection (a transaction reading while it
// reads) runs on a statement of its own, and both results are whole.
func TestBusyStatementIsNotReused(t *testing.T) {
	db := openSQLite(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	const q = `SELECT v FROM kv WHERE v >= ? ORDER BY v`
	outer, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var v int
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.QueryContext(ctx, q, v)
		if err != nil {
			t.Fatal(err)
		}
		var vs []int
		for inner.Next() {
			var w int
			if err := inner.Scan(&w); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, w)
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(v, vs))
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"0 [0 1 2]", "1 [1 2]", "2 [2]"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A statement that failed (a constraint) runs again afterwards.
func TestStatementRunsAgainAfterAnError(t *testing.T) {
	db := openSQLite(t)
	ctx := t.Context()
	const ins = `INSERT INTO kv (k, v) VALUES (?, ?)`
	if _, err := db.ExecContext(ctx, ins, "a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, ins, "a", 2); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := db.ExecContext(ctx, ins, "b", 2); err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v; want 2", n, err)
	}
	// A query cancelled before it runs leaves nothing behind either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.QueryContext(cctx, `SELECT v FROM kv`); err == nil {
		t.Fatal("cancelled query ran")
	}
	if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "b").Scan(&n); err != nil || n != 2 {
		t.Fatalf("b = %d, %v; want 2", n, err)
	}
}

// The cache is bounded: the oldest statements are finalized first.
func TestStatementCacheIsBounded(t *testing.T) {
	db := openSQLite(t)
	ctx := t.Context()
	for i := range stmtCacheSize + 10 {
		var n int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d = %d, %v", i, n, err)
		}
	}
	got := cached(t, db)
	if len(got) != stmtCacheSize {
		t.Fatalf("%d statements cached, want %d", len(got), stmtCacheSize)
	}
	if got[len(got)-1] != fmt.Sprintf(`SELECT %d`, stmtCacheSize+9) || slices.Contains(got, `SELECT 0`) {
		t.Fatalf("cache keeps %q … %q: want the newest", got[0], got[len(got)-1])
	}
}
