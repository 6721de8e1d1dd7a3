package store_test

import (
	"testing"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/graph/store"
)

// A user record read for a request holds every column but the password
// hash, whether the database or the cache answered.
func TestUserRecordsLeaveTheHashBehind(t *testing.T) {
	db := entdbtest.Open(t)
	r := cachetest.New(t)
	ids, err := entdbtest.Seed(t.Context(), db.Client, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	tiers := cache.NewTiers(r.Client, bus.New(r.Client, r.Prefix, nil),
		cache.TierConfig{Prefix: r.Prefix, UserTTL: time.Hour, PageTTL: time.Minute})
	s := store.New(db.Client, db.Dialect, tiers)
	for _, from := range []string{"the database", "the cache"} {
		u, err := s.User(t.Context(), ids[0])
		if err != nil || u == nil {
			t.Fatalf("from %s: %v, %v", from, u, err)
		}
		if u.PasswordHash != "" {
			t.Errorf("from %s: the record holds the password hash", from)
		}
		if u.Email != "seed0@example.com" || u.Name != "Author 0" || u.Role == "" || u.CreatedAt.IsZero() {
			t.Errorf("from %s: incomplete record %+v", from, u)
		}
	}
}
