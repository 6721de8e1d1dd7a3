package cache

import (
	"context"
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
// request instead of one query per object (no N+1).
type Loaders struct {
	// User loads user profiles by ID through the user cache tier; a missing
	// user loads as nil. Its records carry no password hash.
	User *dataloadgen.Loader[pulid.ID, *ent.User]
	// Role loads users' current roles straight from the database: what
	// authorises a request is never served from a cache.
	Role *dataloadgen.Loader[pulid.ID, user.Role]
	// Post loads posts by ID (post and node lookups); missing: nil.
	Post *dataloadgen.Loader[pulid.ID, *ent.Post]
	// UserPosts loads pages of authors' post lists; first pages of many
	// authors come from one query.
	UserPosts *dataloadgen.Loader[PostPageKey, *ent.PostConnection]

	tiers *Tiers
}

// UserNow loads one user at once, without waiting for a batch to fill:
// for the viewer, whom a request asks for on its own. The result primes
// the User loader.
func (l *Loaders) UserNow(ctx context.Context, id pulid.ID) (*ent.User, error) {
	us, errs := l.tiers.Users(ctx, []pulid.ID{id})
	if errs != nil {
		return nil, errs[0]
	}
	l.User.Prime(id, us[0])
	return us[0], nil
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

// NewLoaders returns fresh loaders. Create one set per request: loaders
// keep what they load, and that must not outlive the request.
func NewLoaders(client *ent.Client, tiers *Tiers) *Loaders {
	opt := dataloadgen.WithWait(loaderWait)
	return &Loaders{
		tiers: tiers,
		User:  dataloadgen.NewLoader(tiers.Users, opt),
		Role: dataloadgen.NewLoader(func(ctx context.Context, ids []pulid.ID) ([]user.Role, []error) {
			users, err := client.User.Query().Where(user.IDIn(ids...)).Select(user.FieldID, user.FieldRole).All(ctx)
			if err != nil {
				return nil, fill(len(ids), err)
			}
			byID := make(map[pulid.ID]user.Role, len(users))
			for _, u := range users {
				byID[u.ID] = u.Role
			}
			out := make([]user.Role, len(ids))
			for i, id := range ids {
				out[i] = byID[id] // "" for a user that does not exist
			}
			return out, nil
		}, opt),
		Post: dataloadgen.NewLoader(func(ctx context.Context, ids []pulid.ID) ([]*ent.Post, []error) {
			posts, err := client.Post.Query().Where(post.IDIn(ids...)).All(ctx)
			if err != nil {
				return nil, fill(len(ids), err)
			}
			byID := make(map[pulid.ID]*ent.Post, len(posts))
			for _, p := range posts {
				byID[p.ID] = p
			}
			out := make([]*ent.Post, len(ids))
			for i, id := range ids {
				out[i] = byID[id]
			}
			return out, nil
		}, opt),
		UserPosts: dataloadgen.NewLoader(func(ctx context.Context, keys []PostPageKey) ([]*ent.PostConnection, []error) {
			reqs := make([]PostPage, len(keys))
			for i, k := range keys {
				reqs[i] = k.page()
			}
			return tiers.PostPages(ctx, reqs)
		}, opt),
	}
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
