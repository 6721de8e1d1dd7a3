package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
	"github.com/authql/authql/graph/model"
)

// responseCache serves whole responses of cacheable queries from Redis
// (the design's 1-minute tier), keyed by the operation, its variables and
// the viewer's scope, under the generations of users and posts: a write
// makes every response built before it unreachable.
//
// Only authenticated queries without errors are cached, and only after the
// request passed authentication, rate limiting and validation. The schema
// says which fields make an answer depend on who asks (@cacheControl): a
// query that selects one of those (me, e-mail addresses, the admin-only
// users list) is cached per viewer; one that selects a field never cached
// (sessions) or introspection is never looked up.
//
// What a directive or resolver decided from the viewer's role is part of
// the key: a query that reaches a field marked PRIVATE_PER_ROLE (every
// @hasRole field is) is looked up under the viewer's current role, read
// from the database as @hasRole reads it, so a demoted admin misses and is
// refused by the directive itself. An answer whose resolution read the
// viewer's role without the role in its key, or read anyone else's role
// (User.role), is not stored at all.
type responseCache struct {
	tiers  *cache.Tiers
	roleOf func(context.Context, pulid.ID) (user.Role, error)
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = responseCache{}

func (responseCache) ExtensionName() string                   { return "ResponseCache" }
func (responseCache) Validate(graphql.ExecutableSchema) error { return nil }

func (rc responseCache) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	if len(graphql.GetErrors(ctx)) > 0 {
		// gqlgen runs the interceptors for requests it has already refused
		// (rate limit, validation): those get their errors, never a hit.
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	v, authenticated := auth.FromContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query || !authenticated {
		return next(ctx)
	}
	if s := extension.GetComplexityStats(ctx); s == nil || s.Complexity < minCachedComplexity {
		return next(ctx) // cheaper to run than to look up
	}
	scope, roleDependent, ok := responseScope(oc.Operation, oc.Doc, v)
	if !ok {
		return next(ctx)
	}
	if roleDependent {
		role, err := rc.roleOf(ctx, v.UserID)
		if err != nil {
			return next(ctx) // the resolvers meet and report it
		}
		scope += "|role:" + string(role)
	}
	used := &roleRead{}
	ctx = context.WithValue(ctx, roleReadKey{}, used)
	h := sha256.New()
	vars, _ := json.Marshal(oc.Variables) // map keys are sorted: canonical
	for _, part := range [][]byte{[]byte(scope), []byte(oc.RawQuery), []byte(oc.OperationName), vars} {
		h.Write(part)
		h.Write([]byte{0})
	}
	hash := hex.EncodeToString(h.Sum(nil))
	entry := rc.tiers.Response(ctx, hash)
	if entry.Data != nil {
		return &graphql.Response{Data: entry.Data}
	}
	resp := next(ctx)
	if resp != nil && len(resp.Errors) == 0 && len(resp.Data) > 0 && !used.other.Load() && (roleDependent || !used.viewer.Load()) {
		rc.tiers.StoreResponse(ctx, entry, hash, resp.Data)
	}
	return resp
}

// roleRead records which roles resolving an operation read: the viewer's
// (a directive or an ownership check decided on it), or anyone else's.
type roleRead struct{ viewer, other atomic.Bool }

type roleReadKey struct{}

// noteRoleRead marks the operation being resolved as dependent on id's role.
func noteRoleRead(ctx context.Context, id pulid.ID) {
	r, ok := ctx.Value(roleReadKey{}).(*roleRead)
	if !ok {
		return
	}
	if v, _ := auth.FromContext(ctx); v.UserID == id {
		r.viewer.Store(true)
	} else {
		r.other.Store(true)
	}
}

// minCachedComplexity is the least complexity worth a response cache round
// trip: a query such as { me { id email } } is answered from memory faster
// than Redis could answer the lookup.
const minCachedComplexity = 10

// responseScope says who may share a cached response: "*" for any
// authenticated viewer, "u:<id>" for this viewer only; roleDependent, that
// the answer depends on the viewer's role too; ok is false if the operation
// must not be cached.
func responseScope(op *ast.OperationDefinition, doc *ast.QueryDocument, v auth.Viewer) (scope string, roleDependent, ok bool) {
	walk := walkWith[cacheNeeds](doc, cacheNeedsOf{})
	needs := walk.set(op.SelectionSet)
	switch {
	case needs&uncached != 0:
		return "", false, false
	case needs&perViewer != 0:
		return "u:" + string(v.UserID), needs&perRole != 0, true
	}
	return "*", needs&perRole != 0, true
}

// cacheNeeds is what a selection asks of the response cache.
type cacheNeeds uint8

const (
	perViewer cacheNeeds = 1 << iota // cached for the viewer only
	perRole                          // keyed by the viewer's role too
	uncached                         // never cached
)

// cacheNeedsOf finds what the fields of an operation ask of the cache.
type cacheNeedsOf struct{}

func (cacheNeedsOf) enter(ast.Selection) bool { return true }

func (cacheNeedsOf) leave(sel ast.Selection, below cacheNeeds) cacheNeeds {
	if deferred(sel) {
		// Its response comes in parts (incremental delivery): the cache
		// holds one response, and would serve the initial part as whole.
		return uncached
	}
	f, ok := sel.(*ast.Field)
	switch {
	case !ok || f.Definition == nil:
		return below
	case isIntrospection(f):
		return uncached // cheap to answer, and not worth a key
	}
	return below | fieldCacheNeeds(f.Definition)
}

// deferred reports whether sel is a fragment with @defer.
func deferred(sel ast.Selection) bool {
	switch s := sel.(type) {
	case *ast.InlineFragment:
		return s.Directives.ForName("defer") != nil
	case *ast.FragmentSpread:
		return s.Directives.ForName("defer") != nil
	}
	return false
}

// fieldCacheNeeds is what the schema says of a field with @cacheControl:
// the one place that decides which fields make an answer private, keyed
// by role, or never cached (TestViewerDependentFieldsAreCachedPrivately
// checks that every field that needs to says so).
func fieldCacheNeeds(def *ast.FieldDefinition) cacheNeeds {
	d := def.Directives.ForName("cacheControl")
	if d == nil {
		return 0
	}
	scope := d.Arguments.ForName("scope")
	if scope == nil || scope.Value == nil {
		return 0
	}
	switch model.CacheScope(scope.Value.Raw) {
	case model.CacheScopePrivate:
		return perViewer
	case model.CacheScopePrivatePerRole:
		return perViewer | perRole
	case model.CacheScopeNoStore:
		return uncached
	}
	return 0
}

func (cacheNeedsOf) add(sum, n cacheNeeds) (cacheNeeds, bool) {
	sum |= n
	return sum, sum&uncached != 0
}
