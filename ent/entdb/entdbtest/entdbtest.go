// Package entdbtest gives tests a database of their own: a fresh schema in
// the PostgreSQL named by DATABASE_URL when set, otherwise a SQLite file in
// the test's temporary directory. Either way it is the real driver and the
// real migration.
//
// It imports ent, entdb and ent/schema/pulid. Only tests import it.
package entdbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authql/authql/ent/entdb"
)

// DSN returns the data source name of a new, empty database for tb, dropped
// when tb ends. Several clients (server instances) may open it.
func DSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("DATABASE_URL")
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return "sqlite:" + filepath.Join(tb.TempDir(), "test.db")
	}
	schema := "t_" + strings.ToLower(rand.Text()[:16])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated database for tb, closed when tb ends.
func Open(tb testing.TB) *entdb.DB {
	tb.Helper()
	db, err := entdb.OpenMigrated(context.Background(), DSN(tb), entdb.Pool{}, nil)
	if err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}
