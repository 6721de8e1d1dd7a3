package graph

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent/schema/pulid"
)

// Operation describes one GraphQL operation once its response is ready:
// what the api log line and the operation metrics are made of. It holds
// nothing a client sent but the operation's name: no variables, no token.
type Operation struct {
	// Name is the name the document gives the operation; "" for an
	// anonymous operation or a request that never parsed.
	Name string
	// Type is "query", "mutation" or "subscription"; "" if the request
	// never parsed.
	Type string
	// Duration runs from the start of the request to the response.
	Duration time.Duration
	// Codes are the distinct extensions.code values of the response's
	// errors, in order of appearance; none means success.
	Codes []string
	// Complexity is the operation's computed complexity; 0 if it was not
	// computed (refused before pricing).
	Complexity int
	// UserID is the authenticated caller; "" for none.
	UserID pulid.ID
	// Subscription is "started" or "ended" for a subscription, reported
	// when it starts and when it ends (Duration is then its lifetime), never
	// per event; "" for any other operation.
	Subscription string
	// Events is how many events an ended subscription delivered.
	Events int64
}

// Outcome is "ok" for a success, else the error codes joined by ",".
func (o Operation) Outcome() string {
	if len(o.Codes) == 0 {
		return "ok"
	}
	return strings.Join(o.Codes, ",")
}

// observeExtension reports every response to fn. It is the outermost
// response interceptor, so it sees every response: cached ones, and
// requests refused before any resolver ran (parse and validation errors,
// rate limits).
type observeExtension struct {
	fn func(context.Context, Operation)
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = observeExtension{}

func (observeExtension) ExtensionName() string                   { return "Observe" }
func (observeExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e observeExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || inGroup(ctx) {
		return resp // a subscription's event: the hub reports subscriptions
	}
	op := Operation{}
	start := graphql.GetStartTime(ctx)
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		if oc.Operation != nil {
			op.Name, op.Type = oc.Operation.Name, string(oc.Operation.Operation)
		}
		if s := extension.GetComplexityStats(ctx); s != nil {
			op.Complexity = s.Complexity
		}
		if start.IsZero() {
			start = oc.Stats.OperationStart
		}
	}
	if !start.IsZero() {
		op.Duration = graphql.Now().Sub(start)
	}
	if v, ok := auth.FromContext(ctx); ok {
		op.UserID = v.UserID
	}
	for _, err := range resp.Errors {
		code, _ := err.Extensions["code"].(string)
		if code == "" {
			code = CodeInternal // the presenter codes every error; be safe
		}
		if !slices.Contains(op.Codes, code) {
			op.Codes = append(op.Codes, code)
		}
	}
	e.fn(ctx, op)
	return resp
}
