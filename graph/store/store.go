// Package store is the read model of the GraphQL layer: pages of the post
// and user lists by keyset (never OFFSET), first pages of many authors in
// one windowed query, totals by grouped counts, the Relay connections
// built from them, user records, and the per-request dataloaders that
// batch all of these. It reads through the cache tiers and answers their
// misses from the database, and tells the tiers what a write invalidates.
//
// It imports ent and cache; graph imports it. It never imports graph, auth
// or server.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// Page sizes. Every list is capped, so no query can ask the database for
// an unbounded number of rows.
const (
	// DefaultPageSize is the page size when neither first nor last is given.
	DefaultPageSize = 20
	// MaxPageSize is the largest page a list serves.
	MaxPageSize = 100
)

// ErrPageSize is returned for a page size out of range; its message
// completes "<first or last> ...".
var ErrPageSize = fmt.Errorf("must be between 0 and %d", MaxPageSize)

// CheckPageSize returns ErrPageSize for a page size no list serves: below
// 0 or above MaxPageSize. Such a page is refused, not cut short, so a
// client never mistakes a cut page for the end of the list. Every check of
// a page size is this one.
func CheckPageSize(n int64) error {
	if n < 0 || n > MaxPageSize {
		return ErrPageSize
	}
	return nil
}

// ErrBadCursor is returned for a cursor that is not one of the list's.
var ErrBadCursor = errors.New("not a cursor of this list")

// Store reads posts and users for the GraphQL layer, through the cache
// tiers. It is safe for concurrent use; one serves the whole process.
type Store struct {
	client  *ent.Client
	dialect string // of the database: the statements the store writes itself
	tiers   *cache.Tiers
	users   *cache.Users[pulid.ID, *ent.User]

	pageStatements     sync.Map // pageShape → its statement's text
	pageStatementCount atomic.Int64
}

// New returns the read model over client, a database of the given
// dialect (dialect.SQLite or dialect.Postgres), cached in tiers. (client
// and tiers may be nil for a schema that is only inspected, never run.)
func New(client *ent.Client, dialect string, tiers *cache.Tiers) *Store {
	s := &Store{client: client, dialect: dialect, tiers: tiers}
	if tiers != nil {
		s.users = cache.NewUsers(tiers, cache.UserSource[pulid.ID, *ent.User]{
			Load: s.loadUsers, Encode: encodeUser, Decode: decodeUser,
		})
	}
	return s
}

// InvalidatePosts makes every cached page, total and response built
// before a write of posts unreachable (see cache.Tiers.InvalidatePosts).
// Returns rdb.ErrUnavailable if Redis cannot be told.
func (s *Store) InvalidatePosts(ctx context.Context) error { return s.tiers.InvalidatePosts(ctx) }

// PostsWritten is InvalidatePosts once the write has committed: it also
// has every process drop the responses it holds, and returns when they
// have.
func (s *Store) PostsWritten(ctx context.Context) error { return s.tiers.PostsWritten(ctx) }

// InvalidateUsers drops the cached records of users being written, and
// everything cached under the users generation. Returns
// rdb.ErrUnavailable if Redis cannot be told.
func (s *Store) InvalidateUsers(ctx context.Context, ids ...pulid.ID) error {
	return s.tiers.InvalidateUsers(ctx, idStrings(ids)...)
}

// UsersWritten is InvalidateUsers once the write has committed: it also
// has every process drop its in-process copies, and returns when they
// have.
func (s *Store) UsersWritten(ctx context.Context, ids ...pulid.ID) error {
	return s.tiers.UsersWritten(ctx, idStrings(ids)...)
}

// UsersCreated is InvalidateUsers once the creation of users has
// committed: no process holds their records, but every process drops the
// responses it holds (a list of users, a count), and returns when they
// have.
func (s *Store) UsersCreated(ctx context.Context, ids ...pulid.ID) error {
	return s.tiers.UsersCreated(ctx, idStrings(ids)...)
}

func idStrings(ids []pulid.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// inOrder returns, for each of ids, value(row) of the row whose key is
// that ID, or V's zero value if there is none: a query by IDs returns rows
// in any order and leaves the missing ones out, and a dataloader wants
// one value per ID, in order.
func inOrder[T, V any](ids []pulid.ID, rows []T, key func(T) pulid.ID, value func(T) V) []V {
	byID := make(map[pulid.ID]T, len(rows))
	for _, r := range rows {
		byID[key(r)] = r
	}
	out := make([]V, len(ids))
	for i, id := range ids {
		if r, ok := byID[id]; ok {
			out[i] = value(r)
		}
	}
	return out
}

// fill is n copies of err: a batch that failed as a whole.
func fill(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// page is a page of a list, in list order, and whether rows lie past
// either end.
type page[T any] struct {
	rows             []T
	hasNext, hasPrev bool
}

// connection builds the edges and page info of a Relay connection over a
// page: edge fills in a node's edge, and cursor finds the cursor in an edge
// (StartCursor and EndCursor point at the edges' own).
func connection[N, E any](p page[N], edge func(N, *E), cursor func(*E) *ent.Cursor) ([]*E, ent.PageInfo) {
	// One allocation for the page's edges, not one per edge.
	all := make([]E, len(p.rows))
	edges := make([]*E, len(p.rows))
	for i, n := range p.rows {
		edge(n, &all[i])
		edges[i] = &all[i]
	}
	info := ent.PageInfo{HasNextPage: p.hasNext, HasPreviousPage: p.hasPrev}
	if n := len(edges); n > 0 {
		info.StartCursor = cursor(edges[0])
		info.EndCursor = cursor(edges[n-1])
	}
	return edges, info
}

// keyset is how a page is read by keyset: n+1 rows past the cursors
// given, in the list's order, or against it for the last n (backward).
type keyset struct {
	n                       int
	backward, after, before bool
}

// page turns the rows a keyset query read into a page, in list order (a
// backward read comes in reverse), and says whether rows lie past either
// end: the extra row tells in the direction read; the other side has rows
// if a cursor was given there, as the Relay specification allows.
func keysetPage[T any](rows []T, k keyset) page[T] {
	more := len(rows) > k.n
	rows = rows[:min(k.n, len(rows))]
	if k.backward {
		slices.Reverse(rows)
		return page[T]{rows: rows, hasNext: k.before, hasPrev: more}
	}
	return page[T]{rows: rows, hasNext: more, hasPrev: k.after}
}
