package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/user"
)

// userColumns are the columns of a user record that requests read: all but
// the password hash, which only the password checks load (by themselves),
// so lists and cache misses do not carry it out of the database.
var userColumns = slices.DeleteFunc(slices.Clone(user.Columns), func(c string) bool { return c == user.FieldPasswordHash })

// UserPage is a page of the users list, oldest first, by keyset on the ID
// (IDs sort by creation time), never OFFSET. The list is counted only when
// totalCount is asked for, through UserCount: entgql's Paginate counts the
// table whenever pageInfo is selected, a scan per page on a large table.
// Exactly one of first and last is set (checked by the caller). Returns
// ErrBadCursor for a cursor of another list.
func (t *Tiers) UserPage(ctx context.Context, first *int, after *ent.Cursor, last *int, before *ent.Cursor, totalCount bool) (*ent.UserConnection, error) {
	for _, c := range []*ent.Cursor{after, before} {
		if c != nil && (!c.ID.Valid() || c.Value != nil) {
			return nil, ErrBadCursor
		}
	}
	conn := &ent.UserConnection{Edges: []*ent.UserEdge{}}
	if totalCount {
		n, err := t.UserCount(ctx)
		if err != nil {
			return nil, err
		}
		conn.TotalCount = n
	}
	backward := last != nil
	n, order := 0, ent.Asc(user.FieldID)
	if backward {
		n, order = *last, ent.Desc(user.FieldID)
	} else {
		n = *first
	}
	if n == 0 { // a page of none reads nothing
		conn.PageInfo.HasNextPage, conn.PageInfo.HasPreviousPage = before != nil, after != nil
		return conn, nil
	}
	q := t.client.User.Query()
	if after != nil {
		q.Where(user.IDGT(after.ID))
	}
	if before != nil {
		q.Where(user.IDLT(before.ID))
	}
	rows, err := q.Select(userColumns...).Order(order).Limit(n + 1).All(ctx)
	if err != nil {
		return nil, err
	}
	rows, conn.PageInfo.HasNextPage, conn.PageInfo.HasPreviousPage = keysetPage(rows, n, backward, after != nil, before != nil)
	for _, u := range rows {
		conn.Edges = append(conn.Edges, &ent.UserEdge{Node: u, Cursor: ent.Cursor{ID: u.ID}})
	}
	if l := len(conn.Edges); l > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[l-1].Cursor
	}
	return conn, nil
}

// UserCount is the size of the users list: cached under the users
// generation (every user write, a sign-up included, moves it on), so the
// table is counted once per write, not once per page. On a Redis failure
// the database answers.
func (t *Tiers) UserCount(ctx context.Context) (int, error) {
	count := func() (int, error) { return t.client.User.Query().Count(ctx) }
	if t.cfg.PageTTL <= 0 {
		return count()
	}
	res, err := readUserCount.Run(ctx, t.rdb, []string{t.k.usersGen()}, append(t.genArgs(), t.k.userCountPrefix())...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "count cache unavailable; counting in the database", slog.Any("error", err))
		t.obs.Access(TierCount, false)
		return count()
	}
	if s, ok := res[1].(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			t.obs.Access(TierCount, true)
			return n, nil
		}
	}
	t.obs.Access(TierCount, false)
	n, err := count()
	if err != nil {
		return 0, err
	}
	// Under the generation read before counting: a write since then has
	// moved the generation on, and this count is never read.
	gen := parseGen(fmt.Sprint(res[0]))
	if err := t.rdb.Set(ctx, t.k.userCount(gen), n, t.cfg.PageTTL).Err(); err != nil {
		t.log.WarnContext(ctx, "write count cache", slog.Any("error", err))
	}
	return n, nil
}

// readUserCount reads the users generation and, under it, the count, in
// one round trip.
//
//	KEYS[1] users generation   ARGV[1], ARGV[2] seed and TTL (genArgs)
//	ARGV[3] count key prefix
//
// Returns {generation, count or false}.
var readUserCount = redis.NewScript(genLua + `
local g = gen(KEYS[1])
return {g, redis.call('GET', ARGV[3] .. g) or false}
`)
