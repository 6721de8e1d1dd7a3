package graph

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The HTTP transports (GET and POST) follow GraphQL over HTTP to the letter
// (graphql-http's audit, .ci/http-audit.sh, checks every MUST and SHOULD),
// where gqlgen's own differ in two ways:
//
//   - A request error (the document does not parse or validate, a variable
//     does not coerce) is answered 200 under application/json, which the
//     spec asks of that legacy media type, and 400 under
//     application/graphql-response+json. gqlgen answers 422 under
//     application/json, which no GraphQL client requires.
//   - The response to a request error has no "data" entry: nothing was
//     executed (GraphQL spec, "Response Format"; GraphQL over HTTP, "data"
//     absent on a request error). gqlgen sends "data": null.
//
// Both also read a persisted document request's documentId (see
// documents.go), and answer a request with neither query nor documentId
// (nor a persisted-query hash) 400 BAD_REQUEST: it is not a GraphQL request.

// httpParams are the parameters of a GraphQL-over-HTTP request, persisted
// document requests included.
type httpParams struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
	DocumentID    string         `json:"documentId"`
}

// postTransport serves POST with a JSON body.
type postTransport struct{}

var _ graphql.Transport = postTransport{}

func (postTransport) Supports(r *http.Request) bool { return transport.POST{}.Supports(r) }

func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	var p httpParams
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		msg := "the body is not a GraphQL request: a JSON object with \"query\" (a string) or \"documentId\", and optional \"operationName\", \"variables\" and \"extensions\""
		if err == io.EOF {
			msg = "the body is empty: send a JSON GraphQL request"
		}
		Refusal{Code: CodeBadRequest, Message: msg}.Write(w, r)
		return
	}
	execute(w, r, exec, p, start)
}

// getTransport serves GET (queries only: operationKindGuard refuses the
// rest) with its refusals coded: a query string that does not decode,
// variables or extensions that are not JSON objects. It marks the
// request's context, so operationKindGuard can refuse mutations.
type getTransport struct{}

var _ graphql.Transport = getTransport{}

type overGETKey struct{}

func (getTransport) Supports(r *http.Request) bool { return transport.GET{}.Supports(r) }

func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		Refusal{Code: CodeBadRequest, Message: "the query string does not decode (RFC 3986 percent-encoding)"}.Write(w, r)
		return
	}
	p := httpParams{Query: q.Get("query"), OperationName: q.Get("operationName"), DocumentID: q.Get("documentId")}
	for name, into := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
		if v := q.Get(name); v != "" && !decodeObject(v, into) {
			Refusal{Code: CodeBadRequest, Message: name + " must be a JSON object"}.Write(w, r)
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), overGETKey{}, true))
	execute(w, r, exec, p, start)
}

// decodeObject decodes s, a JSON object, into m; numbers stay json.Number,
// as the POST body's do.
func decodeObject(s string, m *map[string]any) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec.Decode(m) == nil
}

// execute runs one GraphQL-over-HTTP request and writes its response.
func execute(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, p httpParams, start time.Time) {
	if p.Query == "" && p.DocumentID == "" && p.Extensions["persistedQuery"] == nil {
		Refusal{Code: CodeBadRequest, Message: "a GraphQL request needs \"query\" (a GraphQL document) or \"documentId\""}.Write(w, r)
		return
	}
	ctx := r.Context()
	if p.DocumentID != "" {
		ctx = context.WithValue(ctx, documentIDKey{}, p.DocumentID)
	}
	raw := &graphql.RawParams{
		Query:         p.Query,
		OperationName: p.OperationName,
		Variables:     p.Variables,
		Extensions:    p.Extensions,
		Headers:       r.Header,
		ReadTime:      graphql.TraceTiming{Start: start, End: graphql.Now()},
	}
	media := responseType(r)
	w.Header().Set("Content-Type", media)
	oc, errs := exec.CreateOperationContext(ctx, raw)
	if errs != nil {
		w.WriteHeader(requestErrorStatus(media, errs))
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		writeJSON(w, requestErrorResponse{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// writeResponse writes a response as json.Marshal would (the same members
// in the same order), but copies data, the JSON the executor wrote, as it
// is: json.Marshal validates and compacts a raw message byte by byte,
// which for a page of posts costs more than marshalling everything else.
func writeResponse(w io.Writer, r *graphql.Response) {
	if r == nil || r.Label != "" || r.Path != nil || r.HasNext != nil {
		writeJSON(w, r)
		return
	}
	b := make([]byte, 0, len(r.Data)+64)
	b = append(b, '{')
	if len(r.Errors) > 0 {
		errs, err := json.Marshal(r.Errors)
		if err != nil {
			panic(err) // as in writeJSON
		}
		b = append(append(append(b, `"errors":`...), errs...), ',')
	}
	b = append(b, `"data":`...)
	if len(r.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Data...)
	}
	if len(r.Extensions) > 0 {
		ext, err := json.Marshal(r.Extensions)
		if err != nil {
			panic(err)
		}
		b = append(append(b, `,"extensions":`...), ext...)
	}
	_, _ = w.Write(append(b, '}'))
}

// requestErrorResponse is the response to a request error: no "data".
type requestErrorResponse struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// requestErrorStatus is the status of a request error under media: a
// document that does not parse or validate, or variables that do not
// coerce, is 400 under application/graphql-response+json and 200 under
// application/json (GraphQL over HTTP, "Response"; the legacy media type
// cannot tell a request error from a field error by its status, so clients
// read the body). Any other request error (a refused persisted query, a
// page too large) is 200; a refusal with a status of its own replaces
// either (see withResponseStatus).
func requestErrorStatus(media string, errs gqlerror.List) int {
	if media == mediaGraphQLJSON && errcode.GetErrorKind(errs) == errcode.KindProtocol {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Nothing in a response is unmarshalable (data is raw JSON the
		// executor wrote): a failure here is a bug.
		panic(err)
	}
	_, _ = w.Write(b)
}
