package cache

import (
	"context"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// loaderWait is how long a loader collects keys before it fetches. Lists
// prime their loaders with every key up front (LoadAll), so the window only
// has to catch stragglers; dataloadgen's 16 ms default would add that much
// to every request that loads anything.
const loaderWait = time.Millisecond

// Loaders are the per-request dataloaders: one batch query per entity type
// per request instead of one query per object (no N+1).
type Loaders struct {
	// User loads users by ID; a missing user loads as nil.
	User *dataloadgen.Loader[pulid.ID, *ent.User]
}

// NewLoaders returns fresh loaders reading through client. Create one set
// per request: loaders cache what they load, and that cache must not
// outlive the request.
func NewLoaders(client *ent.Client) *Loaders {
	return &Loaders{
		User: dataloadgen.NewLoader(func(ctx context.Context, ids []pulid.ID) ([]*ent.User, []error) {
			users, err := client.User.Query().Where(user.IDIn(ids...)).All(ctx)
			if err != nil {
				return nil, []error{err}
			}
			return orderByKeys(ids, users, func(u *ent.User) pulid.ID { return u.ID })
		}, dataloadgen.WithWait(loaderWait)),
	}
}

// orderByKeys returns vals in the order of keys; a key without a value gets
// the zero value (a nil entity), which callers read as "no such entity".
func orderByKeys[V any](keys []pulid.ID, vals []V, key func(V) pulid.ID) ([]V, []error) {
	byID := make(map[pulid.ID]V, len(vals))
	for _, v := range vals {
		byID[key(v)] = v
	}
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = byID[k]
	}
	return out, nil
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
