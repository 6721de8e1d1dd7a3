package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
)

// Server-Sent Events: the graphql-sse protocol's "distinct connections"
// mode (github.com/enisdenjo/graphql-sse, PROTOCOL.md), one operation per
// POST /query with Accept: text/event-stream, answered with "next" events
// and a last "complete". gqlgen's transport.SSE frames the stream;
// eventStream gives it what a WebSocket has: the session watched for the
// stream's whole life (goLive, as a socket's connection_init), the
// per-user cap on live connections, and refusals made before the stream
// starts as coded JSON with an HTTP status, as the protocol asks.

const mediaEventStream = "text/event-stream"

// WantsEventStream reports whether r asks for its response as an event
// stream: a POST of a JSON GraphQL request whose Accept prefers
// text/event-stream to every other type. A client that merely lists it
// (urql lists it after application/graphql-response+json) gets JSON.
func WantsEventStream(r *http.Request) bool {
	return prefers(r, mediaEventStream)
}

// prefers reports whether r is a POST of a JSON GraphQL request whose
// Accept prefers media. Most requests do not name it at all: they cost a
// substring search, no parsing.
func prefers(r *http.Request, media string) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, media) && isJSONPost(r) && preferredType(accept) == media
}

// isJSONPost reports whether r is a POST with a JSON body.
func isJSONPost(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && err == nil && mt == mediaJSON
}

// preferredType is the media type of accept with the highest quality, the
// first of those on a tie; "" for none.
func preferredType(accept string) string {
	best, bestQ := "", 0.0
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		if q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best
}

// eventStream is the SSE transport.
type eventStream struct {
	sse  transport.SSE
	r    *Resolver
	o    WebSocketOptions
	stop <-chan struct{}
}

var _ graphql.Transport = eventStream{}

// eventStreamTransport returns the SSE transport: keep-alive comments at
// the sockets' ping interval, and the sockets' per-user cap.
func (r *Resolver) eventStreamTransport(o WebSocketOptions, stop <-chan struct{}) eventStream {
	o.IdleTimeout = 0 // a stream carries one operation from its start
	return eventStream{sse: transport.SSE{KeepAlivePingInterval: o.PingInterval}, r: r, o: o, stop: stop}
}

func (t eventStream) Supports(r *http.Request) bool { return WantsEventStream(r) }

func (t eventStream) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	// gqlgen's transport logs a body it cannot decode, whole, through the
	// standard logger: a login's password with it. Such a body is refused
	// here first.
	r, ok := streamParams(w, r)
	if !ok {
		return
	}
	s := &streamState{}
	r = r.WithContext(context.WithValue(r.Context(), streamStateKey{}, s))
	gate := &streamWriter{ResponseWriter: w}
	defer gate.close() // nothing is written once the handler has returned
	// Buffering proxies (nginx) pass each event on as it comes.
	w.Header().Set("X-Accel-Buffering", "no")
	t.sse.Do(gate, r, &streamExec{GraphExecutor: exec, t: t, w: gate, r: r, s: s})
}

// streamParams reads the body of a request a streaming transport of
// gqlgen's (SSE, multipart/mixed) will decode again: a body that transport
// would log whole, or one with neither query nor documentId, is refused
// here, and a documentId goes in the context as the POST transport puts
// it (documents.go). ok is false if the request was refused.
func streamParams(w http.ResponseWriter, r *http.Request) (_ *http.Request, ok bool) {
	body, err := io.ReadAll(r.Body)
	var p httpParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err != nil || dec.Decode(&p) != nil {
		Refusal{Code: CodeBadRequest, Message: "the body is not a GraphQL request: a JSON object with \"query\" (a string) or \"documentId\", and optional \"operationName\", \"variables\" and \"extensions\""}.Write(w, r)
		return nil, false
	}
	if p.Query == "" && p.DocumentID == "" && p.Extensions["persistedQuery"] == nil {
		Refusal{Code: CodeBadRequest, Message: "a GraphQL request needs \"query\" (a GraphQL document) or \"documentId\""}.Write(w, r)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if p.DocumentID != "" {
		r = r.WithContext(context.WithValue(r.Context(), documentIDKey{}, p.DocumentID))
	}
	return r, true
}

// streamState is what an event stream knows of how it ends.
type streamState struct {
	mu  sync.Mutex
	err *gqlerror.Error // why the subscription ended early
}

type streamStateKey struct{}

func streamStateFrom(ctx context.Context) *streamState {
	s, _ := ctx.Value(streamStateKey{}).(*streamState)
	return s
}

func (s *streamState) fail(err *gqlerror.Error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *streamState) failure() *gqlerror.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// subscriptionFailed tells a subscriber why its subscription ends (its
// budget, say): an error message on a socket, a last "next" event with the
// error on an event stream.
func subscriptionFailed(ctx context.Context, err *gqlerror.Error) {
	if s := streamStateFrom(ctx); s != nil {
		s.fail(err)
		return
	}
	if liveConnFrom(ctx) != nil {
		transport.AddSubscriptionError(ctx, err)
	}
}

// streamExec runs the stream's operation: a subscription goes live (its
// session is authenticated and watched) before it is dispatched, and every
// refusal is answered before the stream starts.
type streamExec struct {
	graphql.GraphExecutor
	t    eventStream
	w    *streamWriter
	r    *http.Request
	s    *streamState
	live context.Context // a subscription's, once authenticated
}

func (e *streamExec) CreateOperationContext(ctx context.Context, params *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	// gqlgen's transport says no-cache; every API response is no-store.
	e.w.Header().Set("Cache-Control", "no-store")
	oc, errs := e.GraphExecutor.CreateOperationContext(ctx, params)
	status := http.StatusBadRequest
	if errs == nil && oc.Operation.Operation == ast.Subscription {
		var err error
		if e.live, err = e.goLive(ctx); err != nil {
			gqlErr := errorPresenter(e.t.r.log)(ctx, err)
			errs, status = gqlerror.List{gqlErr}, liveRefusalStatus(gqlErr)
		}
	}
	if errs != nil {
		e.refuse(ctx, errs, status)
	}
	return oc, errs
}

// goLive authenticates the stream's access token, as a socket's
// connection_init is: the Authorization header's (the refresh cookie
// authenticates nothing but refresh).
func (e *streamExec) goLive(ctx context.Context) (context.Context, error) {
	token, present := auth.BearerToken(e.r.Header.Get("Authorization"))
	if !present {
		return nil, auth.ErrUnauthenticated
	}
	live, _, err := e.t.r.goLive(ctx, token, e.t.o)
	if err != nil || e.t.stop == nil {
		return live, err
	}
	// When the server stops, the stream ends as a dropped connection
	// would: nothing more is written, "complete" included, so a client
	// (graphql-sse retries by default) reconnects to another instance.
	live, cancel := context.WithCancel(live)
	go func() {
		defer cancel()
		select {
		case <-e.t.stop:
			e.w.close()
		case <-live.Done():
		}
	}()
	return live, nil
}

// liveRefusalStatus is the HTTP status of a stream refused at its start.
func liveRefusalStatus(err *gqlerror.Error) int {
	switch code, _ := err.Extensions["code"].(string); code {
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	default:
		return RefusalStatus(code)
	}
}

// refuse answers the request with errs as JSON, before the stream starts
// (a refused request's own status, if it has one, wins over status); the
// transport's writes after that go nowhere.
func (e *streamExec) refuse(ctx context.Context, errs gqlerror.List, status int) {
	resp := e.GraphExecutor.DispatchError(ctx, errs)
	// No "data": nothing was executed (GraphQL over HTTP, request errors).
	body, _ := json.Marshal(struct {
		Errors     gqlerror.List  `json:"errors"`
		Extensions map[string]any `json:"extensions,omitempty"`
	}{resp.Errors, resp.Extensions})
	h := e.w.ResponseWriter.Header()
	h.Set("Content-Type", responseType(e.r))
	h.Del("X-Accel-Buffering")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer")
	}
	e.w.ResponseWriter.WriteHeader(status)
	_, _ = e.w.ResponseWriter.Write(body)
	e.w.close()
}

// DispatchOperation runs a subscription on its live context, which ends
// with its session, and ends the stream with one last "next" event that
// says why, if it ended early.
func (e *streamExec) DispatchOperation(ctx context.Context, oc *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	if e.live == nil {
		return e.GraphExecutor.DispatchOperation(ctx, oc)
	}
	next, dctx := e.GraphExecutor.DispatchOperation(e.live, oc)
	ended := false
	return func(ctx context.Context) *graphql.Response {
		if ended {
			return nil
		}
		if resp := next(ctx); resp != nil {
			return resp
		}
		ended = true
		if err := e.endedBy(ctx); err != nil {
			return &graphql.Response{Errors: gqlerror.List{err}}
		}
		return nil
	}, dctx
}

// endedBy is why the subscription ended, nil if it ended by itself or the
// client left.
func (e *streamExec) endedBy(ctx context.Context) *gqlerror.Error {
	if err := e.s.failure(); err != nil {
		return err
	}
	lc := liveConnFrom(e.live)
	lc.mu.Lock()
	code := lc.code
	lc.mu.Unlock()
	var err error
	switch code {
	case closeForbidden:
		err = auth.ErrSessionRevoked
	case closeUnauthorized:
		err = auth.ErrTokenExpired
	case closeTryAgain:
		return &gqlerror.Error{Message: "the session cannot be checked right now; subscribe again shortly",
			Extensions: map[string]any{"code": CodeServiceUnavailable, "retryAfter": 1}}
	default:
		return nil
	}
	return errorPresenter(e.t.r.log)(ctx, err)
}

// streamWriter passes the stream to the client until it is closed: once
// the request was refused, or once the handler returned (gqlgen's
// keep-alive goroutine may wake after that).
type streamWriter struct {
	http.ResponseWriter
	mu     sync.Mutex
	closed bool
}

func (w *streamWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *streamWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what was written (gqlgen's transport needs an http.Flusher).
func (w *streamWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}
