package graph

import (
	"context"
	"net/http"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The attributes of a GraphQL span. Operation name and type are
// OpenTelemetry's semantic conventions; the rest are this server's. The
// document and its variables are never recorded: they carry passwords
// and tokens (login, refresh).
const (
	attrOperationName = attribute.Key("graphql.operation.name")
	attrOperationType = attribute.Key("graphql.operation.type")
	attrComplexity    = attribute.Key("graphql.operation.complexity")
	attrErrorCodes    = attribute.Key("graphql.error.codes")
	attrFieldPath     = attribute.Key("graphql.field.path")
)

// tracing makes a span of every GraphQL request (each event of a
// subscription over a WebSocket), and one of every field with a resolver
// of its own: the root fields, User.posts and Post.author, the ones that
// reach the database, Redis or a dataloader. Fields read off an object
// already loaded get none.
type tracing struct{ t trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = tracing{}

func (tracing) ExtensionName() string                   { return "Tracing" }
func (tracing) Validate(graphql.ExecutableSchema) error { return nil }

// operationSpanKey marks a context whose span is the GraphQL request's.
type operationSpanKey struct{}

// wrap starts the operation's span before gqlgen reads the request, so
// that what runs before any resolver (the persisted-query lookup, parsing,
// validation, the rate budget's Redis round trip) is inside it. A
// WebSocket's events get spans of their own (InterceptResponse).
func (e tracing) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, span := e.t.Start(r.Context(), operationSpanName)
		defer span.End()
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, operationSpanKey{}, span)))
	})
}

// operationSpanName names an operation's span until it is known.
const operationSpanName = "GraphQL Operation"

// InterceptResponse names the operation's span after the operation
// ("query Feed") and records its type, complexity and error codes, for
// refused operations too (a parse or validation error, a spent rate
// budget). Outside an HTTP request (a subscription event over a
// WebSocket) the span is started here.
func (e tracing) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	span, ok := ctx.Value(operationSpanKey{}).(trace.Span)
	if !ok {
		ctx, span = e.t.Start(ctx, operationSpanName)
		defer span.End()
	}
	resp := next(ctx)
	e.record(ctx, span, resp)
	return resp
}

// record names span after the operation and adds its attributes.
func (tracing) record(ctx context.Context, span trace.Span, resp *graphql.Response) {
	attrs := make([]attribute.KeyValue, 0, 4)
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil {
			name := string(op.Operation)
			if op.Name != "" {
				name += " " + op.Name
				attrs = append(attrs, attrOperationName.String(op.Name))
			}
			span.SetName(name)
			attrs = append(attrs, attrOperationType.String(string(op.Operation)))
		}
	}
	if s := extension.GetComplexityStats(ctx); s != nil {
		attrs = append(attrs, attrComplexity.Int(s.Complexity))
	}
	if resp != nil && len(resp.Errors) > 0 {
		var errCodes []string
		for _, err := range resp.Errors {
			code, _ := err.Extensions["code"].(string)
			if code == "" {
				code = CodeInternal
			}
			if !slices.Contains(errCodes, code) {
				errCodes = append(errCodes, code)
			}
		}
		attrs = append(attrs, attrErrorCodes.StringSlice(errCodes))
		// A client's mistake is no fault of the server's (OpenTelemetry's
		// rule for server spans): only ours mark the span failed.
		if slices.Contains(errCodes, CodeInternal) || slices.Contains(errCodes, CodeServiceUnavailable) {
			span.SetStatus(codes.Error, "")
		}
	}
	span.SetAttributes(attrs...)
}

// InterceptField spans the fields that have a resolver of their own.
func (e tracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver {
		return next(ctx)
	}
	ctx, span := e.t.Start(ctx, fc.Object+"."+fc.Field.Name,
		trace.WithAttributes(attrFieldPath.String(fc.Path().String())))
	defer span.End()
	res, err := next(ctx)
	if err != nil {
		// The code, not the message: an internal error's text is for the
		// error log, which the trace id leads to.
		code := CodeInternal
		if p, _ := problemOf(err); p != nil {
			code = p.code
		}
		span.SetAttributes(attrErrorCodes.StringSlice([]string{code}))
		if code == CodeInternal || code == CodeServiceUnavailable {
			span.SetStatus(codes.Error, "")
		}
	}
	return res, err
}
