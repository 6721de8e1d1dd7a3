package graph

import (
	"context"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// refuseRequest gives the whole response the status of code (unless it is
// refused for another reason already), with Retry-After raised to
// retryAfter seconds.
func refuseRequest(ctx context.Context, code string, retryAfter int) {
	if st := responseStatusFrom(ctx); st != nil {
		st.refuse(RefusalStatus(code), retryAfter)
	}
}

// Refusal is a request refused before, or instead of, any GraphQL. Its
// response is GraphQL-shaped all the same: {"errors": [...]} with
// extensions.code, so a client reads every refusal one way.
type Refusal struct {
	Code    string
	Message string
	// Extensions go next to the code (retryAfter, limit).
	Extensions map[string]any
}

// Write sends the refusal with the status its code calls for (see
// RefusalStatus), as application/json, or as
// application/graphql-response+json if the client asked for that.
func (f Refusal) Write(w http.ResponseWriter, r *http.Request) {
	ext := maps.Clone(f.Extensions)
	if ext == nil {
		ext = map[string]any{}
	}
	ext["code"] = f.Code
	// No "data" key: nothing was executed (GraphQL over HTTP, request errors).
	body, _ := json.Marshal(map[string]any{"errors": gqlerror.List{{Message: f.Message, Extensions: ext}}})
	w.Header().Set("Content-Type", responseType(r))
	w.WriteHeader(RefusalStatus(f.Code))
	_, _ = w.Write(body)
}

const (
	mediaJSON        = "application/json"
	mediaGraphQLJSON = "application/graphql-response+json"
	allowedMethods   = "GET, POST"
)

// responseType is the media type of a refusal: what the client's Accept
// names first of application/json and application/graphql-response+json,
// application/json when it names neither.
func responseType(r *http.Request) string {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		switch mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt {
		case mediaJSON, "application/*", "*/*":
			return mediaJSON
		case mediaGraphQLJSON:
			return mediaGraphQLJSON
		}
	}
	return mediaJSON
}

// refuseUnsupported answers a request that none of transports takes:
// gqlgen would answer it itself, as text/plain and with no code.
func refuseUnsupported(next http.Handler, transports []graphql.Transport) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, t := range transports {
			if t.Supports(r) {
				next.ServeHTTP(w, r)
				return
			}
		}
		if r.Method == http.MethodPost {
			Refusal{Code: CodeBadRequest, Message: "the body of a POST must be a JSON GraphQL request sent with Content-Type: application/json"}.Write(w, r)
			return
		}
		w.Header().Set("Allow", allowedMethods)
		Refusal{Code: CodeMethodNotAllowed, Message: "only GET (queries) and POST are served here"}.Write(w, r)
	})
}

// operationKindGuard refuses what plain HTTP does not carry, before any
// limit is checked or charged: a mutation over GET (which caches,
// prefetchers and crawlers may send again; GraphQL over HTTP requires 405),
// a subscription outside a WebSocket or an event stream (gqlgen would
// answer it with a bare null), and @defer where only the initial payload
// would be sent.
type operationKindGuard struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationKindGuard{}

func (operationKindGuard) ExtensionName() string                   { return "OperationKindGuard" }
func (operationKindGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (operationKindGuard) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	var code, msg string
	switch {
	case oc.Operation.Operation == ast.Subscription && liveConnFrom(ctx) == nil && !isEventStream(ctx):
		code, msg = CodeBadRequest, "subscriptions are served over a WebSocket (graphql-transport-ws or graphql-ws) or as Server-Sent Events (graphql-sse: POST with Accept: text/event-stream)"
	case !deliversIncrementally(ctx) && usesDefer(oc.Operation, oc.Doc, oc.RawQuery):
		code, msg = CodeBadRequest, "@defer needs a response in parts: send Accept: multipart/mixed (or text/event-stream)"
	case oc.Operation.Operation != ast.Query && ctx.Value(overGETKey{}) != nil:
		code, msg = CodeMethodNotAllowed, "mutations must be sent with POST"
		if st := responseStatusFrom(ctx); st != nil {
			st.allowOnly(http.MethodPost)
		}
	default:
		return nil
	}
	refuseRequest(ctx, code, 0)
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}

// upgradeRefusals is the WebSocket transport with its refusals coded:
// the WebSocket library answers a bad upgrade (no Upgrade: websocket, a
// version other than 13, an Origin not allowed) in text/plain, and gqlgen
// then appends a JSON error of its own to the same body.
type upgradeRefusals struct{ wsTransport }

func (t upgradeRefusals) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	hw := HoldErrors(w)
	t.wsTransport.Do(hw, r, exec)
	switch hw.Held() {
	case 0:
	case http.StatusForbidden:
		Refusal{Code: CodeForbidden, Message: "WebSockets from this Origin are not allowed"}.Write(w, r)
	default:
		Refusal{Code: CodeBadRequest, Message: "not a WebSocket upgrade this server accepts (RFC 6455, version 13)"}.Write(w, r)
	}
}
