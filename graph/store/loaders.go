package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/post"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// loaderWait is how long a loader collects keys before it fetches. Lists
// put all their keys into the batch at once (prefetch), so the window only
// has to catch sibling fields resolving concurrently, which register their
// keys within microseconds; dataloadgen's 16 ms default would add that much
// to every request that loads anything.
const loaderWait = 100 * time.Microsecond

// Loaders are the per-request dataloaders: one batch per entity type per
// request instead of one query per object (no N+1). Each is built on first
// use: most requests need one or none.
type Loaders struct {
	s *Store

	waits atomic.Int64 // batches fetched for fields that waited on a loader

	user      lazy[*dataloadgen.Loader[pulid.ID, *ent.User]]
	role      lazy[*dataloadgen.Loader[pulid.ID, user.Role]]
	post      lazy[*dataloadgen.Loader[pulid.ID, *ent.Post]]
	userPosts lazy[*dataloadgen.Loader[PostPageKey, *ent.PostConnection]]
}

// lazy is a value built once, on first use, safely from many goroutines.
type lazy[T any] struct {
	once  sync.Once
	built atomic.Bool
	v     T
}

func (l *lazy[T]) get(build func() T) T {
	l.once.Do(func() { l.v = build(); l.built.Store(true) })
	return l.v
}

// Waits counts the batches the request's loaders fetched for fields that
// asked for keys nobody had prefetched: such a field waited for the batch
// window and a query. Lists read it to decide whether their elements can
// run one after another (see graph's marshalList).
func (l *Loaders) Waits() int64 { return l.waits.Load() }

// waited counts fetch's calls in l.waits.
func waited[K comparable, V any](l *Loaders, fetch func(context.Context, []K) ([]V, []error)) func(context.Context, []K) ([]V, []error) {
	return func(ctx context.Context, keys []K) ([]V, []error) {
		l.waits.Add(1)
		return fetch(ctx, keys)
	}
}

// User loads user profiles by ID through the user cache tiers; a missing
// user loads as nil. Its records carry no password hash.
func (l *Loaders) User() *dataloadgen.Loader[pulid.ID, *ent.User] {
	return l.user.get(func() *dataloadgen.Loader[pulid.ID, *ent.User] {
		return dataloadgen.NewLoader(waited(l, l.s.users.GetMany), dataloadgen.WithWait(loaderWait))
	})
}

// Role loads users' current roles straight from the database: what
// authorises a request is never served from a cache. A user that does not
// exist has the role "".
func (l *Loaders) Role() *dataloadgen.Loader[pulid.ID, user.Role] {
	return l.role.get(func() *dataloadgen.Loader[pulid.ID, user.Role] {
		return dataloadgen.NewLoader(waited(l, l.fetchRoles), dataloadgen.WithWait(loaderWait))
	})
}

// Post loads posts by ID (post and node lookups); missing: nil.
func (l *Loaders) Post() *dataloadgen.Loader[pulid.ID, *ent.Post] {
	return l.post.get(func() *dataloadgen.Loader[pulid.ID, *ent.Post] {
		return dataloadgen.NewLoader(waited(l, l.fetchPosts), dataloadgen.WithWait(loaderWait))
	})
}

// UserPosts loads pages of authors' post lists; first pages of many
// authors come from one query.
func (l *Loaders) UserPosts() *dataloadgen.Loader[PostPageKey, *ent.PostConnection] {
	return l.userPosts.get(func() *dataloadgen.Loader[PostPageKey, *ent.PostConnection] {
		return dataloadgen.NewLoader(waited(l, l.fetchUserPosts), dataloadgen.WithWait(loaderWait))
	})
}

func (l *Loaders) fetchRoles(ctx context.Context, ids []pulid.ID) ([]user.Role, []error) {
	users, err := l.s.client.User.Query().Where(user.IDIn(ids...)).Select(user.FieldID, user.FieldRole).All(ctx)
	if err != nil {
		return nil, fill(len(ids), err)
	}
	return inOrder(ids, users, userID, func(u *ent.User) user.Role { return u.Role }), nil
}

func (l *Loaders) fetchPosts(ctx context.Context, ids []pulid.ID) ([]*ent.Post, []error) {
	posts, err := l.s.client.Post.Query().Where(post.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fill(len(ids), err)
	}
	return inOrder(ids, posts, func(p *ent.Post) pulid.ID { return p.ID }, func(p *ent.Post) *ent.Post { return p }), nil
}

func (l *Loaders) fetchUserPosts(ctx context.Context, keys []PostPageKey) ([]*ent.PostConnection, []error) {
	reqs := make([]PostPage, len(keys))
	for i, k := range keys {
		reqs[i] = k.page()
	}
	return l.s.PostPages(ctx, reqs)
}

// prefetch fetches every key at once and primes the loader with the
// results, so the fields that load them later find them without waiting
// for a batch window. A failure is left for those fields to meet and
// report.
func prefetch[K comparable, V any](ctx context.Context, ld *dataloadgen.Loader[K, V], keys []K, fetch func(context.Context, []K) ([]V, []error)) {
	seen := make(map[K]bool, len(keys))
	uniq := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	if len(uniq) == 0 {
		return
	}
	vals, errs := fetch(ctx, uniq)
	if errs != nil {
		return
	}
	for i, k := range uniq {
		ld.Prime(k, vals[i])
	}
}

// PrefetchUsers loads users a list is about to ask for (a page's authors).
func (l *Loaders) PrefetchUsers(ctx context.Context, ids []pulid.ID) {
	prefetch(ctx, l.User(), ids, l.s.users.GetMany)
}

// PrefetchPosts loads posts an operation is about to ask for.
func (l *Loaders) PrefetchPosts(ctx context.Context, ids []pulid.ID) {
	prefetch(ctx, l.Post(), ids, l.fetchPosts)
}

// PrefetchUserPosts loads pages a list of users is about to ask for.
func (l *Loaders) PrefetchUserPosts(ctx context.Context, keys []PostPageKey) {
	prefetch(ctx, l.UserPosts(), keys, l.fetchUserPosts)
}

// UserNow loads one user at once, without waiting for a batch to fill:
// for the viewer, whom a request asks for on its own. The result primes
// the User loader.
func (l *Loaders) UserNow(ctx context.Context, id pulid.ID) (*ent.User, error) {
	u, err := l.s.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.user.built.Load() { // don't build a loader only to prime it
		l.User().Prime(id, u)
	}
	return u, nil
}

// PostPageKey is a PostPage in comparable form, for the UserPosts loader.
type PostPageKey struct {
	Author        pulid.ID
	First, Last   int // -1: not given
	After, Before *ent.Cursor
	Order         *ent.PostOrder
	TotalCount    bool
}

func optInt(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func intOpt(n int) *int {
	if n < 0 {
		return nil
	}
	return &n
}

// Key returns the loader key of a page request.
func (p PostPage) Key() PostPageKey {
	return PostPageKey{Author: p.Author, First: optInt(p.First), Last: optInt(p.Last),
		After: p.After, Before: p.Before, Order: p.Order, TotalCount: p.TotalCount}
}

func (k PostPageKey) page() PostPage {
	return PostPage{Author: k.Author, First: intOpt(k.First), Last: intOpt(k.Last),
		After: k.After, Before: k.Before, Order: k.Order, TotalCount: k.TotalCount}
}

// NewLoaders returns fresh loaders over s. Create one set per request:
// loaders keep what they load, and that must not outlive the request.
func NewLoaders(s *Store) *Loaders {
	return &Loaders{s: s}
}

type loadersKey struct{}

// WithLoaders returns a context carrying l.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// LoadersFrom returns the loaders of the request, if any.
func LoadersFrom(ctx context.Context) (*Loaders, bool) {
	l, ok := ctx.Value(loadersKey{}).(*Loaders)
	return l, ok
}
