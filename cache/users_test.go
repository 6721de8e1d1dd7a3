package cache_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/cachetest"
)

// record is a user record of these tests.
type record struct{ ID, Name string }

// fakeDB is the database behind the tier: records by ID, and the IDs each
// Load asked for.
type fakeDB struct {
	mu    sync.Mutex
	names map[string]string
	loads [][]string
}

func (db *fakeDB) set(id, name string) {
	db.mu.Lock()
	db.names[id] = name
	db.mu.Unlock()
}

func (db *fakeDB) source() cache.UserSource[string, *record] {
	return cache.UserSource[string, *record]{
		Load: func(_ context.Context, ids []string) ([]*record, error) {
			db.mu.Lock()
			defer db.mu.Unlock()
			db.loads = append(db.loads, slices.Clone(ids))
			out := make([]*record, len(ids))
			for i, id := range ids {
				if name, ok := db.names[id]; ok {
					out[i] = &record{ID: id, Name: name}
				}
			}
			return out, nil
		},
		Encode: func(r *record) []byte { return []byte(r.ID + "|" + r.Name) },
		Decode: func(id string, b []byte) (*record, bool) {
			gotID, name, ok := strings.Cut(string(b), "|")
			return &record{ID: gotID, Name: name}, ok && gotID == id
		},
	}
}

func (db *fakeDB) loaded() [][]string {
	db.mu.Lock()
	defer db.mu.Unlock()
	return slices.Clone(db.loads)
}

// userProcess is one process's user tier, with its bus running and synced.
func userProcess(t *testing.T, r *cachetest.Redis, db *fakeDB) (*cache.Tiers, *cache.Users[string, *record]) {
	t.Helper()
	tiers, _, _ := process(t, r, cache.TierConfig{Prefix: r.Prefix, UserTTL: time.Hour})
	return tiers, cache.NewUsers(tiers, db.source())
}

func mustGetName(t *testing.T, users *cache.Users[string, *record], id string) string {
	t.Helper()
	r, err := users.Get(t.Context(), id)
	if err != nil || r == nil {
		t.Fatalf("Get(%s)=%v, %v", id, r, err)
	}
	return r.Name
}

// Records the database loaded once are served from the tiers after that,
// by another process too; a user that does not exist loads as nil.
func TestUsersReadThrough(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	db := &fakeDB{names: map[string]string{"a": "Ann", "b": "Bob"}}
	_, one := userProcess(t, r, db)
	got, errs := one.GetMany(t.Context(), []string{"a", "b", "nobody"})
	if errs != nil {
		t.Fatal(errs)
	}
	if got[0].Name != "Ann" || got[1].Name != "Bob" || got[2] != nil {
		t.Errorf("GetMany=%v, %v, %v, want Ann, Bob, nil", got[0], got[1], got[2])
	}
	_, two := userProcess(t, r, db)
	for _, users := range []*cache.Users[string, *record]{one, two} {
		if got := mustGetName(t, users, "a"); got != "Ann" {
			t.Errorf("Get(a)=%s, want Ann", got)
		}
	}
	if got, want := db.loaded(), [][]string{{"a", "b", "nobody"}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("database loads %v, want %v", got, want)
	}
}

// Once UsersWritten returns, no process serves the record it had before
// the write, from memory or from Redis.
func TestUsersWrittenReachesEveryProcess(t *testing.T) {
	t.Parallel()
	r := cachetest.New(t)
	db := &fakeDB{names: map[string]string{"a": "Ann"}}
	writer, one := userProcess(t, r, db)
	_, two := userProcess(t, r, db)
	for _, users := range []*cache.Users[string, *record]{one, two} {
		mustGetName(t, users, "a") // kept in each process's memory
	}
	db.set("a", "Anna")
	if err := writer.UsersWritten(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	for name, users := range map[string]*cache.Users[string, *record]{"the writer": one, "the other process": two} {
		if got := mustGetName(t, users, "a"); got != "Anna" {
			t.Errorf("%s: Get(a)=%s after the write, want Anna", name, got)
		}
	}
}
