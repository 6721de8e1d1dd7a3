package entdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// The migration runs within a pool of one connection: on PostgreSQL the
// connection holding the migration lock is the one that migrates (another
// from the pool would wait forever). It runs on a fresh schema and again on
// a migrated one, and leaves the tables in place.
func TestMigrateWithinAPoolOfOne(t *testing.T) {
	dsn := entdbtest.DSN(t)
	for _, state := range []string{"fresh", "migrated"} {
		db, err := entdb.Open(t.Context(), dsn, entdb.Pool{MaxOpenConns: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err = db.Migrate(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s schema: migrate with one connection: %v", state, err)
		}
		n, err := db.Client.User.Query().Count(t.Context())
		if err != nil || n != 0 {
			t.Fatalf("%s schema: users after the migration: %d, %v; want 0, nil", state, n, err)
		}
		db.Close()
	}
}
