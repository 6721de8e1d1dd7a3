package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
)

// Server-Sent Events: the graphql-sse protocol's "distinct connections"
// mode (github.com/enisdenjo/graphql-sse, PROTOCOL.md), one operation per
// POST /query with Accept: text/event-stream, answered with "next" events
// and a last "complete". A subscription's stream is a live connection of
// the sockets' hub (hub.go): authenticated as a socket's connection_init,
// counted against its user's cap, ended by the hub as a socket is closed,
// its subscription resolved and charged with its group; the hub writes its
// events as SSE events. gqlgen's transport.SSE answers everything else (a
// query, a mutation), and refusals come before the stream starts, as coded
// JSON with an HTTP status, as the protocol asks.

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
	hub  *hub
	stop <-chan struct{}
}

var _ graphql.Transport = eventStream{}

// eventStreamTransport returns the SSE transport; a subscription's stream
// is a member of h, as a socket is.
func eventStreamTransport(h *hub, stop <-chan struct{}) eventStream {
	// No keep-alive of gqlgen's: the hub's sweep keeps a subscription's
	// stream alive, and any other operation answers at once.
	return eventStream{sse: transport.SSE{}, hub: h, stop: stop}
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
	r = r.WithContext(context.WithValue(r.Context(), eventStreamKey{}, true))
	gate := &streamWriter{ResponseWriter: w}
	defer gate.close() // nothing is written once the handler has returned
	// Buffering proxies (nginx) pass each event on as it comes.
	w.Header().Set("X-Accel-Buffering", "no")
	t.sse.Do(gate, r, &streamExec{GraphExecutor: exec, t: t, w: gate, r: r})
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

type eventStreamKey struct{}

// isEventStream reports whether ctx is a request for an event stream.
func isEventStream(ctx context.Context) bool { return ctx.Value(eventStreamKey{}) != nil }

// streamExec runs the stream's operation: a subscription's stream joins
// the hub as a live connection (authenticated, counted against its user's
// cap, ended with its session) before the subscription joins its group,
// and every refusal is answered before the stream starts.
type streamExec struct {
	graphql.GraphExecutor
	t    eventStream
	w    *streamWriter
	r    *http.Request
	conn *liveConn // a subscription's, once authenticated
}

func (e *streamExec) CreateOperationContext(ctx context.Context, params *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	// gqlgen's transport says no-cache; every API response is no-store.
	e.w.Header().Set("Cache-Control", "no-store")
	oc, errs := e.GraphExecutor.CreateOperationContext(ctx, params)
	status := http.StatusBadRequest
	if errs == nil && oc.Operation.Operation == ast.Subscription {
		var err error
		if e.conn, err = e.open(ctx); err != nil {
			gqlErr := errorPresenter(e.t.hub.r.log)(ctx, err)
			errs, status = gqlerror.List{gqlErr}, liveRefusalStatus(gqlErr)
		}
	}
	if errs != nil {
		e.refuse(ctx, errs, status)
	}
	return oc, errs
}

// errTooManyConnections refuses an event stream over its user's cap on
// live connections (sockets and streams).
var errTooManyConnections = errors.New("too many open connections for this user")

// open authenticates the stream's access token as a socket's
// connection_init is (the Authorization header's: the refresh cookie
// authenticates nothing but refresh), counts the stream against its
// user's cap, and adds it to the hub, whose sweep ends it when its token
// expires or its session cannot be checked; a revocation ends it at once.
func (e *streamExec) open(ctx context.Context) (*liveConn, error) {
	token, present := auth.BearerToken(e.r.Header.Get("Authorization"))
	if !present {
		return nil, auth.ErrUnauthenticated
	}
	h := e.t.hub
	c := &liveConn{hub: h, exec: e.GraphExecutor, headers: e.r.Header, opened: time.Now(),
		stream: e.w, streamDone: make(chan struct{}), subs: map[string]*liveSub{}}
	c.ctx = context.WithValue(context.WithoutCancel(ctx), liveConnKey{}, c)
	v, stop, err := h.r.sessions.AuthenticateLive(c.ctx, token, func() { c.end(closeForbidden, "session ended") })
	if err != nil {
		return nil, err
	}
	if !h.r.sockets.acquire(v.UserID, h.o.MaxConnectionsPerUser) {
		stop()
		return nil, errTooManyConnections
	}
	c.mu.Lock() // a revocation may already be ending the stream (endStream)
	c.viewer, c.stopWatch = v, stop
	c.ctx = auth.NewContext(c.ctx, v)
	c.mu.Unlock()
	c.lastRead.Store(c.mono())
	c.lastPing.Store(c.mono())
	h.add(c)
	return c, nil
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

// DispatchOperation adds a subscription to its group in the hub, which
// writes its events to the stream; the stream ends with it: with a last
// "next" event that says why if it ended early, then "complete". When the
// server stops, or the client leaves, nothing more is written, "complete"
// included, so a client (graphql-sse retries by default) reconnects to
// another instance.
func (e *streamExec) DispatchOperation(ctx context.Context, oc *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	c := e.conn
	if c == nil {
		return e.GraphExecutor.DispatchOperation(ctx, oc)
	}
	c.hub.subscribe(auth.NewContext(context.WithValue(ctx, liveConnKey{}, c), c.viewer), c, streamSubID, oc)
	return func(ctx context.Context) *graphql.Response {
		select {
		case <-c.streamDone:
		case <-ctx.Done():
		case <-e.t.stop:
		}
		e.w.close()
		c.cleanup()
		return nil
	}, ctx
}

// streamSubID is the id of a stream's one subscription in the hub.
const streamSubID = "sse"

// Event stream framing (text/event-stream).
var (
	sseNext      = []byte("event: next\ndata: ")
	sseComplete  = []byte("event: complete\n\n")
	sseKeepAlive = []byte(":\n\n")
)

// Ends of a message with a body: an event's blank line, a socket
// message's closing brace.
var (
	sseTail = []byte("\n\n")
	wsTail  = []byte("}")
)

// tail ends a message with a body.
func (c *liveConn) tail() []byte {
	if c.stream != nil {
		return sseTail
	}
	return wsTail
}

// endStream ends an event stream as end would close a socket with code:
// a session revoked, a token expired, a session that cannot be checked
// end it with a last "next" event that says why, then "complete"; any
// other reason (the client left, the server stops, a slow reader) ends it
// without a word. What was queued and not yet written is dropped.
func (c *liveConn) endStream(code int) {
	var err error
	switch code {
	case closeForbidden:
		err = auth.ErrSessionRevoked
	case closeUnauthorized:
		err = auth.ErrTokenExpired
	case closeTryAgain:
		c.closeStream(false, gqlerror.List{{Message: "the session cannot be checked right now; subscribe again shortly",
			Extensions: map[string]any{"code": CodeServiceUnavailable, "retryAfter": 1}}}, true)
		return
	default:
		c.closeStream(false, nil, false)
		return
	}
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	c.closeStream(false, gqlerror.List{errorPresenter(c.hub.r.log)(ctx, err)}, true)
}

// finishStream ends an event stream whose subscription ended (errs: why,
// if early) after the events already queued.
func (c *liveConn) finishStream(errs gqlerror.List) { c.closeStream(true, errs, true) }

// closeStream queues the stream's last events (errs as a "next" event,
// then "complete" if complete) behind what is queued (if keep) and ends
// the stream once they are written; the first end wins.
func (c *liveConn) closeStream(keep bool, errs gqlerror.List, complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	if !keep {
		c.queue, c.backlog = nil, 0
	}
	if errs != nil {
		b, _ := json.Marshal(&graphql.Response{Errors: errs})
		c.queue = append(c.queue, outMsg{head: sseNext, body: b})
	}
	if complete {
		c.queue = append(c.queue, outMsg{head: sseComplete})
	}
	if !c.writing {
		c.writing = true
		go c.flush()
	}
}

// closeNow cuts off a peer that has not taken a write for too long.
func (c *liveConn) closeNow() {
	if c.stream == nil {
		c.conn.CloseNow()
		return
	}
	c.end(closeNormal, "")
	_ = http.NewResponseController(c.stream.ResponseWriter).SetWriteDeadline(time.Now())
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

// errStreamClosed is a write to a stream that has ended.
var errStreamClosed = errors.New("event stream closed")

// writeEvent writes one event and sends it.
func (w *streamWriter) writeEvent(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errStreamClosed
	}
	if _, err := w.ResponseWriter.Write(b); err != nil {
		return err
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush sends what was written (gqlgen's transport needs an http.Flusher).
func (w *streamWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}
