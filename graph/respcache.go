package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
)

// responseCache serves whole responses of cacheable queries from Redis
// (the design's 1-minute tier), keyed by the operation, its variables and
// the viewer's scope, under the generations of users and posts: a write
// makes every response built before it unreachable.
//
// Only authenticated queries without errors are cached, and only after the
// request passed authentication, rate limiting and validation. A query that
// shows viewer-dependent data (me, e-mail addresses, the admin-only users
// list) is cached per viewer; one that cannot be cached at all (sessions,
// introspection) is never looked up.
type responseCache struct{ tiers *cache.Tiers }

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
	scope, ok := responseScope(oc.Operation, oc.Doc, v)
	if !ok {
		return next(ctx)
	}
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
	if resp != nil && len(resp.Errors) == 0 && len(resp.Data) > 0 {
		rc.tiers.StoreResponse(ctx, entry, hash, resp.Data)
	}
	return resp
}

// minCachedComplexity is the least complexity worth a response cache round
// trip: a query such as { me { id email } } is answered from memory faster
// than Redis could answer the lookup.
const minCachedComplexity = 10

// viewerFields make a response depend on who asks.
var viewerFields = map[string]bool{"me": true, "email": true, "users": true}

// uncacheable fields are never served from the response cache: sessions
// live in Redis (no generation tracks them), introspection is cheap.
var uncacheable = map[string]bool{"mySessions": true, "__schema": true, "__type": true}

// responseScope says who may share a cached response: "*" for any
// authenticated viewer, "u:<id>" for this viewer only; ok is false if the
// operation must not be cached.
func responseScope(op *ast.OperationDefinition, doc *ast.QueryDocument, v auth.Viewer) (scope string, ok bool) {
	perViewer := false
	seen := map[string]bool{}
	var walk func(ast.SelectionSet) bool
	walk = func(set ast.SelectionSet) bool {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if uncacheable[sel.Name] {
					return false
				}
				perViewer = perViewer || viewerFields[sel.Name]
				if !walk(sel.SelectionSet) {
					return false
				}
			case *ast.InlineFragment:
				if !walk(sel.SelectionSet) {
					return false
				}
			case *ast.FragmentSpread:
				if seen[sel.Name] {
					continue
				}
				seen[sel.Name] = true
				if f := doc.Fragments.ForName(sel.Name); f != nil && !walk(f.SelectionSet) {
					return false
				}
			}
		}
		return true
	}
	if !walk(op.SelectionSet) {
		return "", false
	}
	if perViewer {
		return "u:" + string(v.UserID), true
	}
	return "*", true
}
