package graph

import (
	"context"
	"slices"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/user"
)

// usersPage is a page of the users list, oldest first, by keyset on the ID
// (IDs sort by creation time), never OFFSET. The list is counted only when
// totalCount is asked for, and the count comes from the cache tier until a
// user is written: entgql's Paginate counts the table whenever pageInfo is
// selected, a scan per page on a large table. first and last are checked
// (pageArgs): exactly one is set.
func (r *Resolver) usersPage(ctx context.Context, first *int, after *ent.Cursor, last *int, before *ent.Cursor) (*ent.UserConnection, error) {
	for _, c := range []*ent.Cursor{after, before} {
		if c != nil && (!c.ID.Valid() || c.Value != nil) {
			return nil, cache.ErrBadCursor
		}
	}
	conn := &ent.UserConnection{Edges: []*ent.UserEdge{}}
	if wantsField(ctx, "totalCount") {
		n, err := r.tiers.UserCount(ctx)
		if err != nil {
			return nil, err
		}
		conn.TotalCount = n
	}
	n, order := 0, ent.Asc(user.FieldID)
	if first != nil {
		n = *first
	} else {
		n, order = *last, ent.Desc(user.FieldID)
	}
	conn.PageInfo.HasNextPage = before != nil
	conn.PageInfo.HasPreviousPage = after != nil
	if n == 0 {
		return conn, nil
	}
	q := r.client.User.Query()
	if after != nil {
		q.Where(user.IDGT(after.ID))
	}
	if before != nil {
		q.Where(user.IDLT(before.ID))
	}
	nodes, err := q.Select(cache.UserColumns...).Order(order).Limit(n + 1).All(ctx)
	if err != nil {
		return nil, err
	}
	if more := len(nodes) > n; more {
		nodes = nodes[:n]
		if first != nil {
			conn.PageInfo.HasNextPage = true
		} else {
			conn.PageInfo.HasPreviousPage = true
		}
	}
	if last != nil {
		slices.Reverse(nodes)
	}
	for _, u := range nodes {
		conn.Edges = append(conn.Edges, &ent.UserEdge{Node: u, Cursor: ent.Cursor{ID: u.ID}})
	}
	if l := len(conn.Edges); l > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[l-1].Cursor
	}
	return conn, nil
}
