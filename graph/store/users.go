package store

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// UserPage asks for one page of the users list, oldest first. Exactly one
// of First and Last is set (the caller applies the default page size).
type UserPage struct {
	First, Last   *int
	After, Before *ent.Cursor
	// TotalCount asks for the size of the whole list too.
	TotalCount bool
}

// Users returns a page of the users list, oldest first, by keyset on the
// ID (IDs sort by creation time), never OFFSET. The list is counted only
// when TotalCount is asked for, through UserCount: entgql's Paginate
// counts the table whenever pageInfo is selected, a scan per page on a
// large table. Returns ErrBadCursor for a cursor of another list.
func (s *Store) Users(ctx context.Context, req UserPage) (*ent.UserConnection, error) {
	for _, c := range []*ent.Cursor{req.After, req.Before} {
		if c != nil && (!c.ID.Valid() || c.Value != nil) {
			return nil, ErrBadCursor
		}
	}
	conn := &ent.UserConnection{}
	if req.TotalCount {
		n, err := s.UserCount(ctx)
		if err != nil {
			return nil, err
		}
		conn.TotalCount = n
	}
	k := keyset{backward: req.Last != nil, after: req.After != nil, before: req.Before != nil}
	order := ent.Asc(user.FieldID)
	if k.backward {
		k.n, order = *req.Last, ent.Desc(user.FieldID)
	} else {
		k.n = *req.First
	}
	p := page[*ent.User]{hasNext: k.before, hasPrev: k.after} // a page of none reads nothing
	if k.n > 0 {
		q := s.client.User.Query()
		if k.after {
			q.Where(user.IDGT(req.After.ID))
		}
		if k.before {
			q.Where(user.IDLT(req.Before.ID))
		}
		rows, err := q.Select(userColumns...).Order(order).Limit(k.n + 1).All(ctx)
		if err != nil {
			return nil, err
		}
		p = keysetPage(rows, k)
	}
	conn.Edges, conn.PageInfo = connection(p,
		func(u *ent.User, e *ent.UserEdge) { *e = ent.UserEdge{Node: u, Cursor: ent.Cursor{ID: u.ID}} },
		func(e *ent.UserEdge) *ent.Cursor { return &e.Cursor })
	return conn, nil
}

// UserCount is the size of the users list: cached under the users
// generation (every user write, a sign-up included, moves it on), so the
// table is counted once per write, not once per page. On a Redis failure
// the database answers.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	read := s.tiers.UserCount(ctx)
	if read.N != nil {
		return *read.N, nil
	}
	n, err := s.client.User.Query().Count(ctx)
	if err != nil {
		return 0, err
	}
	s.tiers.StoreUserCount(ctx, read, n)
	return n, nil
}

// User returns the record of a user, nil if there is none, through the
// user-record tiers: from this process's memory when it has it (the
// viewer, on most requests), else from Redis, else from the database. The
// record carries no password hash.
func (s *Store) User(ctx context.Context, id pulid.ID) (*ent.User, error) {
	return s.users.Get(ctx, id)
}

// userColumns are the columns of a user record that requests read: all but
// the password hash, which only the password checks load (by themselves),
// so lists and cache misses do not carry it out of the database.
var userColumns = slices.DeleteFunc(slices.Clone(user.Columns), func(c string) bool { return c == user.FieldPasswordHash })

// loadUsers reads user records from the database for the user-record
// tier: one per id, in order, nil for none.
func (s *Store) loadUsers(ctx context.Context, ids []pulid.ID) ([]*ent.User, error) {
	users, err := s.client.User.Query().Where(user.IDIn(ids...)).Select(profileColumns...).All(ctx)
	if err != nil {
		return nil, err
	}
	// The same shape as a cache hit: a profile, nothing more.
	profile := func(u *ent.User) *ent.User { return toCachedUser(u).entity() }
	return inOrder(ids, users, userID, profile), nil
}

func userID(u *ent.User) pulid.ID { return u.ID }

// profileColumns are the columns of a cachedUser: what the user tier
// keeps, so what a miss reads. cachedUser.dest scans them, in this order.
var profileColumns = []string{user.FieldID, user.FieldEmail, user.FieldName, user.FieldRole,
	user.FieldEmailVerified, user.FieldCreatedAt, user.FieldUpdatedAt}

// cachedUser is the cached form of a user: the profile, never the password
// hash.
type cachedUser struct {
	ID        pulid.ID  `json:"id"`
	Email     string    `json:"e"`
	Name      string    `json:"n"`
	Role      user.Role `json:"r"`
	Verified  bool      `json:"v,omitempty"`
	CreatedAt time.Time `json:"c"`
	UpdatedAt time.Time `json:"u"`
}

// dest is where a row's profileColumns scan into c, in their order; the
// times as a statement of the store selects them (selected).
func (c *cachedUser) dest() []any {
	return []any{&c.ID, &c.Email, &c.Name, &c.Role, &c.Verified, scanTime{&c.CreatedAt}, scanTime{&c.UpdatedAt}}
}

func toCachedUser(u *ent.User) cachedUser {
	return cachedUser{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Verified: u.EmailVerified, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// entity returns an *ent.User without its password hash. Resolvers read
// its fields; none calls its query methods (it has no client).
func (c cachedUser) entity() *ent.User {
	u := new(ent.User)
	c.set(u)
	return u
}

// set sets u to the user c holds.
func (c cachedUser) set(u *ent.User) {
	*u = ent.User{ID: c.ID, Email: c.Email, Name: c.Name, Role: c.Role, EmailVerified: c.Verified, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func encodeUser(u *ent.User) []byte {
	b, _ := json.Marshal(toCachedUser(u))
	return b
}

func decodeUser(id pulid.ID, b []byte) (*ent.User, bool) {
	var c cachedUser
	if json.Unmarshal(b, &c) != nil || c.ID != id {
		return nil, false
	}
	return c.entity(), true
}
