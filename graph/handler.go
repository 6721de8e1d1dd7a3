package graph

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/trace"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/graph/store"
)

// Options tune the GraphQL handler.
type Options struct {
	// Introspection enables __schema and __type (on in development).
	Introspection bool
	// Suggestions enables "Did you mean ...?" hints in validation errors,
	// which name schema fields (off in production).
	Suggestions bool
	// Limits bound each operation before any resolver runs.
	Limits Limits
	// DebugCost adds extensions.cost to every response.
	DebugCost bool
	// PersistedQueries, if set, enables automatic persisted queries.
	PersistedQueries graphql.Cache[string]
	// TrustedDocuments, if set, are the only documents that run (see
	// documents.go); a documentId is then looked up among them.
	TrustedDocuments Documents
	// WebSocket limits live connections (subscriptions).
	WebSocket WebSocketOptions
	// StopStreams, once closed, ends every subscription's event stream
	// without "complete" (the server is stopping: clients reconnect).
	StopStreams <-chan struct{}
	// Observe, if set, is called with every operation once its response
	// is ready (logs and metrics); a subscription when it starts and when
	// it ends.
	Observe func(context.Context, Operation)
	// Tracer, if set, gets a span of every operation and of every field
	// with a resolver of its own (see trace.go); nil: no tracing, at no
	// cost.
	Tracer trace.TracerProvider
	// LiveStats, if set, is kept up to date by the WebSocket transport.
	LiveStats *LiveStats
}

// NewHandler returns the GraphQL HTTP handler: POST for queries and
// mutations, GET for queries only, WebSocket and Server-Sent Events
// (graphql-sse, sse.go) for subscriptions (every request refused otherwise
// is refused as coded JSON, see refuse.go), a parsed-query cache bounded
// by bytes, the abuse limits and the API rate limit, the error presenter
// and panic recovery, and per-operation dataloaders.
func NewHandler(d Deps, o Options) http.Handler {
	r := newResolver(d)
	srv := handler.New(r.schema())
	// Sockets and event streams are members of one hub (hub.go).
	live := newHub(r, o.WebSocket, o.LiveStats, o.Observe)
	transports := []graphql.Transport{
		upgradeRefusals{wsTransport{hub: live, o: o.WebSocket}}, // only for Upgrade requests
		eventStreamTransport(live, o.StopStreams),               // only for POSTs that prefer text/event-stream
		multipartMixed{}, // only for POSTs that prefer multipart/mixed (@defer)
		getTransport{},
		postTransport{},
	}
	for _, t := range transports {
		srv.AddTransport(t)
	}
	srv.SetQueryCache(newQueryCache())
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	l := o.Limits
	srv.SetValidationRulesFn(o.validationRules())
	if l.MaxTokens > 0 {
		srv.SetParserTokenLimit(l.MaxTokens)
	}
	if l.MaxComplexity <= 0 {
		l.MaxComplexity = int(^uint(0) >> 1)
	}
	// The order matters. Parameters: a documentId is resolved and, with
	// trusted documents, anything else refused; a persisted query is looked up, then
	// the text (sent or looked up) is measured before it is parsed. Then,
	// once the document validated: an operation the transport cannot carry
	// is refused before anything is charged, page sizes before pricing (a
	// clearer error than "too complex"), the price is known before it is
	// charged, and a persisted query is stored only once it was paid for.
	pq := persistedQueries{o.PersistedQueries}
	srv.Use(documentLookup{trusted: o.TrustedDocuments, stored: pq.store})
	if pq.store != nil {
		srv.Use(pq.lookup())
	}
	srv.Use(querySizeGuard{l.MaxQueryBytes})
	srv.Use(operationKindGuard{})
	srv.Use(pageSizeGuard{})
	srv.Use(extension.FixedComplexityLimit(l.MaxComplexity))
	srv.Use(operationGuard{d})
	if pq.store != nil {
		srv.Use(pq)
	}
	srv.SetDisableSuggestion(!o.Suggestions)
	srv.Use(loadersExtension{r.store})
	// The operation's span wraps the observer, so the operation's log line
	// carries its trace id.
	var tr *tracing
	if o.Tracer != nil {
		tr = &tracing{o.Tracer.Tracer("github.com/authql/authql/graph")}
		srv.Use(*tr)
	}
	// Observe wraps every other response interceptor, so it sees every
	// response, cached or refused.
	if o.Observe != nil {
		srv.Use(observeExtension{o.Observe})
	}
	// Cost wraps the response cache, so a hit reports its (small) cost.
	if o.DebugCost {
		srv.Use(costExtension{})
	}
	if d.Tiers != nil {
		srv.Use(responseCache{tiers: d.Tiers, roleOf: r.roleOf})
	}
	srv.SetErrorPresenter(errorPresenter(d.logger()))
	srv.SetRecoverFunc(recoverPanic)
	h := withResponseStatus(refuseUnsupported(srv, transports))
	if tr != nil {
		h = tr.wrap(h)
	}
	return h
}

// pageSizeGuard refuses page sizes over the cap anywhere in an operation,
// once its variables are known and before any resolver runs.
type pageSizeGuard struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = pageSizeGuard{}

func (pageSizeGuard) ExtensionName() string                   { return "PageSizeGuard" }
func (pageSizeGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (pageSizeGuard) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	return checkPageSizes(oc.Operation, oc.Doc, oc.Variables)
}

// operationGuard runs once an operation is parsed, validated and priced, and
// before any resolver: it charges the operation's complexity to the
// caller's API budget.
type operationGuard struct{ d Deps }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationGuard{}

func (operationGuard) ExtensionName() string                   { return "OperationGuard" }
func (operationGuard) Validate(graphql.ExecutableSchema) error { return nil }

// rateExempt are root fields never charged to the API budget: the auth
// mutations have limits of their own, and a client must always be able to
// refresh or sign out, however busy it has been.
var rateExempt = map[string]bool{"refresh": true, "login": true, "register": true, "logout": true}

func (g operationGuard) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if g.d.Limiter == nil || onlyExempt(oc.Operation, oc.Doc) {
		return nil
	}
	cost := 1
	if s := extension.GetComplexityStats(ctx); s != nil {
		cost = s.Complexity
	}
	v, _ := auth.FromContext(ctx)
	if err := g.d.Limiter.API(ctx, v.UserID, auth.MetaFrom(ctx).IP, cost); err != nil {
		// Nothing ran: the whole request is refused (HTTP 429 with
		// Retry-After for a spent budget).
		refuseWith(ctx, err)
		return errorPresenter(g.d.logger())(ctx, err)
	}
	return nil
}

// onlyExempt reports whether every field at the root of op, fragments
// included, is exempt from the API budget.
func onlyExempt(op *ast.OperationDefinition, doc *ast.QueryDocument) bool {
	walk := walkWith[int](doc, rootFields{charged})
	return walk.set(op.SelectionSet) == 0
}

func charged(f *ast.Field) bool { return !rateExempt[f.Name] }

// rootFields counts the fields at the root of an operation, fragments
// included, that match.
type rootFields struct{ match func(*ast.Field) bool }

func (rootFields) enter(sel ast.Selection) bool {
	_, field := sel.(*ast.Field)
	return !field
}

func (r rootFields) leave(sel ast.Selection, below int) int {
	if f, ok := sel.(*ast.Field); ok && r.match(f) {
		return 1
	}
	return below
}

func (rootFields) add(sum, n int) (int, bool) { return sum + n, false }

// loadersExtension gives every operation its own dataloaders, whatever the
// transport.
type loadersExtension struct{ store *store.Store }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = loadersExtension{}

func (loadersExtension) ExtensionName() string                   { return "Loaders" }
func (loadersExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e loadersExtension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	l := store.NewLoaders(e.store)
	ctx = store.WithLoaders(ctx, l)
	prefetchRootLookups(ctx, l)
	return next(ctx)
}

// InterceptResponse gives each event of a subscription fresh loaders: a
// subscription lives for hours, and what its loaders cached for one event
// must not be served with the next.
func (e loadersExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
			ctx = store.WithLoaders(ctx, store.NewLoaders(e.store))
		}
	}
	return next(ctx)
}

// prefetchRootLookups loads the ids of every root node/user/post lookup of
// the operation at once: root fields resolve concurrently, and a batching
// window alone cannot promise they all land in one batch.
func prefetchRootLookups(ctx context.Context, l *store.Loaders) {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return
	}
	// Cheap test first: most operations have no two lookups at the root.
	walk := walkWith[int](oc.Doc, rootFields{isLookup})
	if walk.set(oc.Operation.SelectionSet) < 2 {
		return
	}
	var users, posts []pulid.ID
	for _, f := range collectFields(oc, oc.Operation.SelectionSet, queryImplementors) {
		if !isLookup(f.Field) {
			continue
		}
		s, _ := f.ArgumentMap(oc.Variables)["id"].(string)
		switch id := pulid.ID(s); {
		case !id.Valid():
		case id.Prefix() == pulid.UserPrefix && f.Name != "post":
			users = append(users, id)
		case id.Prefix() == pulid.PostPrefix && f.Name != "user":
			posts = append(posts, id)
		}
	}
	if len(users) > 1 {
		l.PrefetchUsers(ctx, users)
	}
	if len(posts) > 1 {
		l.PrefetchPosts(ctx, posts)
	}
}

// isLookup reports whether f looks an object up by ID.
func isLookup(f *ast.Field) bool { return f.Name == "node" || f.Name == "user" || f.Name == "post" }

// logger returns d.Log or a logger that discards.
func (d Deps) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
