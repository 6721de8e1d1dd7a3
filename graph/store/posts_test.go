package store_test

import (
	"testing"
	"time"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/graph/store"
)

// A page read from the database leaves out the columns it is told nothing
// reads, and the one its cursors hold only when nothing reads them; with
// the page tier on it reads every column, for the selections that will
// find it there.
func TestPageOmitsColumnsNothingReads(t *testing.T) {
	db := entdbtest.Open(t)
	if _, err := entdbtest.Seed(t.Context(), db.Client, 2, 3); err != nil {
		t.Fatal(err)
	}
	want := db.Client.Post.Query().AllX(t.Context())
	r := cachetest.New(t)
	first := 6
	all := store.OmitContent | store.OmitCreatedAt | store.OmitUpdatedAt
	for _, tc := range []struct {
		name                      string
		pageTTL                   time.Duration
		content, created, updated bool // read
		omit                      store.PostColumns
	}{
		{"page tier off", 0, false, true, false, all}, // created_at orders the page
		{"page tier off, cursors unread", 0, false, false, false, all | store.OmitCursors},
		{"page tier on", time.Minute, true, true, true, all | store.OmitCursors},
	} {
		tiers := cache.NewTiers(r.Client, nil, cache.TierConfig{Prefix: r.Prefix + tc.name + ":", PageTTL: tc.pageTTL})
		conn, err := store.New(db.Client, db.Dialect, tiers).Posts(t.Context(), store.PostPage{First: &first, Omit: tc.omit})
		if err != nil {
			t.Fatal(err)
		}
		if len(conn.Edges) != len(want) {
			t.Fatalf("%s: %d posts, want %d", tc.name, len(conn.Edges), len(want))
		}
		for _, e := range conn.Edges {
			p := e.Node
			if p.Title == "" || p.AuthorID == "" {
				t.Errorf("%s: post %s lacks its title or author", tc.name, p.ID)
			}
			if got := p.Content != ""; got != tc.content {
				t.Errorf("%s: content read %v, want %v", tc.name, got, tc.content)
			}
			if got := !p.CreatedAt.IsZero(); got != tc.created {
				t.Errorf("%s: created_at read %v, want %v", tc.name, got, tc.created)
			}
			if got := !p.UpdatedAt.IsZero(); got != tc.updated {
				t.Errorf("%s: updated_at read %v, want %v", tc.name, got, tc.updated)
			}
			if e.Cursor.Value != p.CreatedAt {
				t.Errorf("%s: cursor %v, want the post's created_at %v", tc.name, e.Cursor.Value, p.CreatedAt)
			}
		}
	}
}
