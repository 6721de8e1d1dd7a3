package graph

import (
	"context"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authql/authql/cache"
)

// Options tune the GraphQL handler.
type Options struct {
	// Introspection enables __schema and __type (on in development).
	Introspection bool
	// Suggestions enables "Did you mean ...?" hints in validation errors,
	// which name schema fields (off in production).
	Suggestions bool
	// ComplexityLimit rejects operations scoring more, before any resolver
	// runs (0: no limit).
	ComplexityLimit int
	// ParserTokenLimit bounds the tokens of a query document (0: no limit).
	ParserTokenLimit int
}

// NewHandler returns the GraphQL HTTP handler: POST for every operation, GET
// for queries only (gqlgen refuses mutations over GET), a parsed-query LRU,
// the error presenter and panic recovery, and per-operation dataloaders.
func NewHandler(d Deps, o Options) *handler.Server {
	srv := handler.New(NewSchema(d))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	if o.ComplexityLimit > 0 {
		srv.Use(extension.FixedComplexityLimit(o.ComplexityLimit))
	}
	if o.ParserTokenLimit > 0 {
		srv.SetParserTokenLimit(o.ParserTokenLimit)
	}
	srv.SetDisableSuggestion(!o.Suggestions)
	srv.Use(loadersExtension{d})
	srv.SetErrorPresenter(errorPresenter(d.logger()))
	srv.SetRecoverFunc(recoverPanic)
	return srv
}

// loadersExtension gives every operation its own dataloaders, whatever the
// transport.
type loadersExtension struct{ d Deps }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = loadersExtension{}

func (loadersExtension) ExtensionName() string                   { return "Loaders" }
func (loadersExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e loadersExtension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	return next(cache.WithLoaders(ctx, cache.NewLoaders(e.d.Ent)))
}

// logger returns d.Log or a logger that discards.
func (d Deps) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
