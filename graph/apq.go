package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/99designs/gqlgen/graphql"
	"github.com/go-viper/mapstructure/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// persistedQueries is automatic persisted queries (the Apollo protocol,
// version 1) with gqlgen's messages and codes, but a query is stored only
// once it has parsed and validated and the operation was charged to the
// caller's API budget. gqlgen's AutomaticPersistedQuery stores whatever text
// matches its hash before parsing it, so anyone could park invalid megabyte
// documents in Redis for a day. It is two extensions: lookup() replaces a
// hash by its query before parsing; persistedQueries itself stores.
type persistedQueries struct {
	store graphql.Cache[string]
}

// apqLookup is the first half of persistedQueries.
type apqLookup struct {
	store graphql.Cache[string]
}

var (
	_ interface {
		graphql.HandlerExtension
		graphql.OperationParameterMutator
	} = apqLookup{}
	_ interface {
		graphql.HandlerExtension
		graphql.OperationContextMutator
	} = persistedQueries{}
)

// The error a client answers by sending the query with its hash; clients
// match the message and the code, exactly as gqlgen spells them.
const (
	errPersistedQueryNotFound     = "PersistedQueryNotFound"
	errPersistedQueryNotFoundCode = "PERSISTED_QUERY_NOT_FOUND"
)

// apqStatsKey names the operation's persisted-query state in its stats.
const apqStatsKey = "authql.apq"

// apqPending is a query the client sent with its hash: stored once the
// operation validated.
type apqPending struct{ hash, query string }

func (persistedQueries) ExtensionName() string                   { return "AutomaticPersistedQuery" }
func (persistedQueries) Validate(graphql.ExecutableSchema) error { return nil }
func (apqLookup) ExtensionName() string                          { return "AutomaticPersistedQueryLookup" }
func (apqLookup) Validate(graphql.ExecutableSchema) error        { return nil }

func (a persistedQueries) lookup() apqLookup { return apqLookup(a) }

// MutateOperationParameters replaces a hash by its query, or checks that a
// query sent with a hash matches it. Nothing is stored yet.
func (a apqLookup) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if p.Extensions["persistedQuery"] == nil {
		return nil
	}
	var ext struct {
		Sha256  string `mapstructure:"sha256Hash"`
		Version int64  `mapstructure:"version"`
	}
	if err := mapstructure.Decode(p.Extensions["persistedQuery"], &ext); err != nil {
		return badAPQ(ctx, "invalid APQ extension data")
	}
	if ext.Version != 1 {
		return badAPQ(ctx, "unsupported APQ version")
	}
	if p.Query == "" {
		q, ok := a.store.Get(ctx, ext.Sha256)
		if !ok {
			err := gqlerror.Errorf(errPersistedQueryNotFound)
			err.Extensions = map[string]any{"code": errPersistedQueryNotFoundCode}
			return err
		}
		p.Query = q
		return nil
	}
	sum := sha256.Sum256([]byte(p.Query))
	if hex.EncodeToString(sum[:]) != ext.Sha256 {
		return badAPQ(ctx, "provided APQ hash does not match query")
	}
	graphql.GetOperationContext(ctx).Stats.SetExtension(apqStatsKey, &apqPending{hash: ext.Sha256, query: p.Query})
	return nil
}

// badAPQ refuses a request whose persisted-query extension is malformed:
// gqlgen's messages, with a code and status of their own.
func badAPQ(ctx context.Context, msg string) *gqlerror.Error {
	refuseRequest(ctx, CodeBadRequest, 0)
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadRequest}}
}

// MutateOperationContext stores a query sent with its hash: it runs once
// the document parsed and validated, its variables were coerced, and the
// operation passed the page-size and complexity limits and was charged.
func (a persistedQueries) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if p, ok := oc.Stats.GetExtension(apqStatsKey).(*apqPending); ok {
		a.store.Add(ctx, p.hash, p.query)
	}
	return nil
}
