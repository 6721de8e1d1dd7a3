package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"

	"github.com/authql/authql/cache/cost"
)

// costExtension adds extensions.cost to every response: the SQL statements
// and Redis round trips the request caused (authentication included), and
// the operation's computed complexity. It is what a developer exploring in
// the playground wants to see, and what the no-N+1 tests assert. On in
// development or with APP_DEBUG_COST=1; off in production.
type costExtension struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = costExtension{}

func (costExtension) ExtensionName() string                   { return "Cost" }
func (costExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (costExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	c := cost.FromContext(ctx)
	if resp == nil || c == nil {
		return resp
	}
	counts := map[string]any{
		"sqlStatements":       c.SQL.Load(),
		"redisRoundTrips":     c.Redis.Load(),
		"authRedisRoundTrips": c.AuthRedis.Load(),
	}
	if graphql.HasOperationContext(ctx) { // not for requests that never parsed
		if s := extension.GetComplexityStats(ctx); s != nil {
			counts["complexity"] = s.Complexity
		}
	}
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["cost"] = counts
	return resp
}
