package store

import (
	"slices"
	"testing"

	"entgo.io/contrib/entgql"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/ent/schema/pulid"
)

// Every shape of page keeps its statement (pageArgs gives the builder's
// arguments in the builder's order): the whole list and an author's, both
// orders and directions, forwards and backwards, with either cursor or
// both, with authors joined or not. A page read with a kept statement is
// the page read with a built one.
func TestPageStatementsAreKept(t *testing.T) {
	db := entdbtest.Open(t)
	users, err := entdbtest.Seed(t.Context(), db.Client, 3, 30)
	if err != nil {
		t.Fatal(err)
	}
	r := cachetest.New(t)
	tiers := cache.NewTiers(r.Client, nil, cache.TierConfig{Prefix: r.Prefix})
	ids := func(c *ent.PostConnection) []pulid.ID {
		var out []pulid.ID
		for _, e := range c.Edges {
			out = append(out, e.Node.ID)
		}
		return out
	}
	two, four := 2, 4
	for _, field := range []*ent.PostOrderField{ent.PostOrderFieldCreatedAt, ent.PostOrderFieldUpdatedAt} {
		for _, dir := range []entgql.OrderDirection{entgql.OrderDirectionAsc, entgql.OrderDirectionDesc} {
			for _, author := range []pulid.ID{"", users[1]} {
				order := &ent.PostOrder{Field: field, Direction: dir}
				s := New(db.Client, db.Dialect, tiers)
				whole, err := s.Posts(t.Context(), PostPage{Author: author, First: &four, Order: order})
				if err != nil || len(whole.Edges) != 4 {
					t.Fatalf("%v %v %q: %v, %v", field, dir, author, whole, err)
				}
				after, before := &whole.Edges[0].Cursor, &whole.Edges[3].Cursor
				for _, p := range []PostPage{
					{First: &two},
					{First: &two, After: after},
					{Last: &two, Before: before},
					{First: &two, After: after, Before: before},
					{Last: &two, After: after, Before: before, Authors: true},
					{First: &two, Authors: true, AuthorOmit: OmitEmail | OmitRole, Omit: OmitContent | OmitCursors},
				} {
					p.Author, p.Order = author, order
					built, err := s.Posts(t.Context(), p)
					if err != nil {
						t.Fatal(err)
					}
					kept, err := s.Posts(t.Context(), p)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(ids(built), ids(kept)) || len(built.Edges) == 0 {
						t.Errorf("%v %v %q %+v: built %v, kept %v", field, dir, author, p, ids(built), ids(kept))
					}
				}
				if n := s.pageStatementCount.Load(); n != 7 {
					t.Errorf("%v %v %q: %d statements kept, want 7 (one per shape)", field, dir, author, n)
				}
			}
		}
	}
}
