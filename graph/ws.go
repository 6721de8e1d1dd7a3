package graph

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// WebSocketOptions limit live connections.
type WebSocketOptions struct {
	// MaxConnectionsPerUser bounds one user's open sockets (per instance).
	MaxConnectionsPerUser int
	// MaxSubscriptions bounds the subscriptions of one socket.
	MaxSubscriptions int
	// IdleTimeout closes a socket that has had no subscription this long.
	IdleTimeout time.Duration
	// PingInterval is the keep-alive cadence (graphql-ws "ka" messages;
	// graphql-transport-ws ping/pong, which also drops dead peers).
	PingInterval time.Duration
	// MaxBacklog bounds the bytes waiting to be written to one socket,
	// behind the write under way; a socket past it is closed with 4413 (0:
	// the default, 1 MiB).
	MaxBacklog int
	// OriginPatterns are the browser origins allowed to open a socket
	// (host patterns, e.g. "app.example.com", "localhost:*"); same-origin
	// is always allowed.
	OriginPatterns []string
}

// SocketInitTimeout is how long a socket may stay open without a
// connection_init; then it is closed. Until then nobody is known behind it.
const SocketInitTimeout = 10 * time.Second

// socketInitKey carries the function a socket calls once its
// connection_init is accepted (WithSocketInit).
type socketInitKey struct{}

// WithSocketInit returns a context whose WebSocket calls done once its
// connection_init has been authenticated (at most once; never if the socket
// ends before). The server counts sockets not yet authenticated with it.
func WithSocketInit(ctx context.Context, done func()) context.Context {
	return context.WithValue(ctx, socketInitKey{}, done)
}

// DefaultMaxBacklog is WebSocketOptions.MaxBacklog's default.
const DefaultMaxBacklog = 1 << 20

// DefaultWebSocketOptions returns the production defaults.
func DefaultWebSocketOptions() WebSocketOptions {
	return WebSocketOptions{MaxConnectionsPerUser: 10, MaxSubscriptions: 20, IdleTimeout: 5 * time.Minute, PingInterval: 25 * time.Second, MaxBacklog: DefaultMaxBacklog}
}

// WebSocket close codes (graphql-transport-ws and RFC 6455 application
// range). Clients reconnect with a fresh token on 4401 and sign in again
// on 4403. docs/API.md lists them.
const (
	closeNormal          = 1000
	closeProtocol        = 1002
	closeUnauthorized    = 4401 // the access token expired
	closeForbidden       = 4403 // no valid token, or the session ended
	closeIdle            = 4408 // no subscription for IdleTimeout, or no connection_init in time
	closeDuplicateID     = 4409 // a subscribe with the id of a running subscription
	closeSlowConsumer    = 4413 // writes backed up past MaxBacklog
	closeTooManyRequests = 4429 // too many sockets for this user
	// closeTryAgain (RFC 6455 "try again later") closes a socket whose
	// session this instance cannot check right now (Redis unreachable while
	// the revocation bus is down): it fails closed; reconnect shortly.
	closeTryAgain = 1013
)

const (
	// wsReadLimit bounds one client message (a subscribe carries a query).
	wsReadLimit = 1 << 20
	// wsWriteTimeout bounds one write; a peer that takes longer is cut off.
	wsWriteTimeout = 10 * time.Second
)

// Server messages that never change, written as they are to every socket.
var (
	msgAck  = []byte(`{"type":"connection_ack"}`)
	msgPing = []byte(`{"type":"ping"}`)
	msgPong = []byte(`{"type":"pong"}`)
	msgKA   = []byte(`{"type":"ka"}`)
)

// clientMsg is a message from the client, in either subprotocol.
type clientMsg struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// outMsg is one message to write: head and, if body is set, body and a
// closing brace. A resolved event's body is shared by every socket that
// receives it.
type outMsg struct{ head, body []byte }

func (m outMsg) size() int { return len(m.head) + len(m.body) + 1 }

// liveConn is one socket, or one subscription's event stream (stream set,
// sse.go: its request's handler waits for it). A socket costs one
// goroutine, the one that reads it; writes run on a goroutine started only
// while something waits to be written, and timers (expiry, idle,
// keep-alive) are swept for every connection at once by the hub. Revocation calls in: nothing waits for it.
type liveConn struct {
	hub     *hub
	conn    *coderws.Conn
	legacy  bool // graphql-ws rather than graphql-transport-ws
	exec    graphql.GraphExecutor
	headers http.Header
	// ctx is the socket's context (the viewer, the request's values). It
	// is never cancelled while the socket is open: a cancelled read cuts
	// the TCP connection without a close code.
	ctx       context.Context
	viewer    auth.Viewer
	stopWatch func()
	opened    time.Time
	// stream is set when the connection is an event stream (sse.go)
	// rather than a socket; streamDone is closed once its last event is
	// written.
	stream     *streamWriter
	streamDone chan struct{}

	mu      sync.Mutex
	code    int
	reason  string
	closing bool
	subs    map[string]*liveSub
	queue   []outMsg
	backlog int
	writing bool

	// Monotonic nanoseconds since opened, read by the sweep.
	lastRead atomic.Int64
	lastPing atomic.Int64
	// idle is 1 + when the socket last had no subscription; 0 while it has.
	idle atomic.Int64
	// writing0 is 1 + when the write under way started; 0 if none is.
	writing0 atomic.Int64
}

func (c *liveConn) mono() int64 { return int64(time.Since(c.opened)) }

func (c *liveConn) markIdle() { c.idle.Store(c.mono() + 1) }

// idleFor is how long the socket has had no subscription (0 while it has).
func (c *liveConn) idleFor() time.Duration {
	since := c.idle.Load()
	if since == 0 {
		return 0
	}
	return time.Duration(c.mono() - (since - 1))
}

type liveConnKey struct{}

func liveConnFrom(ctx context.Context) *liveConn {
	c, _ := ctx.Value(liveConnKey{}).(*liveConn)
	return c
}

// wsTransport is the subscription transport: both subprotocols, the
// access token in connection_init, sockets that end with their session,
// and events resolved once per group of subscriptions that share them
// (hub.go).
type wsTransport struct {
	hub *hub
	o   WebSocketOptions
}

var _ graphql.Transport = wsTransport{}

func (t wsTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func (t wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	conn, err := coderws.Accept(w, r, &coderws.AcceptOptions{
		Subprotocols:   []string{"graphql-transport-ws", "graphql-ws"},
		OriginPatterns: t.o.OriginPatterns,
	})
	if err != nil {
		return // Accept answered the request
	}
	conn.SetReadLimit(wsReadLimit)
	c := liveConnFrom(r.Context())
	if c == nil {
		c = &liveConn{}
	}
	c.hub, c.conn, c.exec, c.headers, c.opened = t.hub, conn, exec, r.Header, time.Now()
	// A client that names no subprotocol speaks graphql-ws, as gqlgen
	// assumed.
	c.legacy = conn.Subprotocol() != "graphql-transport-ws"
	// The socket outlives the request's handler (see serve).
	c.ctx = context.WithValue(context.WithoutCancel(r.Context()), liveConnKey{}, c)
	c.subs = map[string]*liveSub{}
	if c.serve() {
		go c.readLoop()
	}
}

// serve authenticates the socket's connection_init and reports whether it
// is open. The reading goes on in a goroutine of its own: the handler's
// has grown a deep stack on its way through the middleware, which a
// socket would hold for hours.
func (c *liveConn) serve() bool {
	initTimer := time.AfterFunc(SocketInitTimeout, func() { c.end(closeIdle, "connection initialisation timeout") })
	m, err := c.read()
	initTimer.Stop()
	if err != nil || !c.init(m) {
		c.drain()
		c.conn.CloseNow()
		return false
	}
	c.hub.add(c)
	return true
}

// readLoop reads the socket until it closes.
func (c *liveConn) readLoop() {
	defer c.conn.CloseNow()
	defer c.cleanup()
	for {
		m, err := c.read()
		if err != nil {
			return
		}
		c.lastRead.Store(c.mono())
		switch m.Type {
		case "subscribe", "start":
			c.subscribe(m.ID, m.Payload)
		case "complete", "stop":
			c.stop(m.ID)
		case "ping":
			c.send(outMsg{head: msgPong})
		case "pong", "ka", "connection_init":
		case "connection_terminate":
			c.end(closeNormal, "terminated")
		default:
			c.end(closeProtocol, "unexpected message")
		}
	}
}

// drain reads until the close handshake that end started completes.
func (c *liveConn) drain() {
	for {
		if _, err := c.read(); err != nil {
			return
		}
	}
}

// read returns the next message; a message that is not JSON closes the
// socket (1002).
func (c *liveConn) read() (clientMsg, error) {
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			return clientMsg{}, err
		}
		var m clientMsg
		if json.Unmarshal(b, &m) == nil {
			return m, nil
		}
		c.end(closeProtocol, "invalid json")
	}
}

// init authenticates connection_init and registers the watch that ends
// the socket with its session. It reports whether the socket is open.
func (c *liveConn) init(m clientMsg) bool {
	if m.Type != "connection_init" {
		c.end(closeProtocol, "expected connection_init")
		return false
	}
	var p transport.InitPayload
	_ = json.Unmarshal(m.Payload, &p)
	token := initToken(p)
	if token == "" {
		c.end(closeForbidden, "connection_init must carry Authorization: Bearer <access token>")
		return false
	}
	r, o := c.hub.r, c.hub.o
	v, stop, err := r.sessions.AuthenticateLive(c.ctx, token, func() { c.end(closeForbidden, "session ended") })
	switch {
	case errors.Is(err, rdb.ErrUnavailable):
		c.end(closeTryAgain, "session cannot be checked; reconnect shortly")
		return false
	case err != nil:
		c.end(closeForbidden, "invalid or revoked access token")
		return false
	}
	if !r.sockets.acquire(v.UserID, o.MaxConnectionsPerUser) {
		stop()
		c.end(closeTooManyRequests, "too many open connections for this user")
		return false
	}
	if done, ok := c.ctx.Value(socketInitKey{}).(func()); ok {
		done()
	}
	c.viewer, c.stopWatch = v, stop
	c.ctx = auth.NewContext(c.ctx, v)
	c.markIdle()
	c.lastRead.Store(c.mono())
	c.lastPing.Store(c.mono())
	c.send(outMsg{head: msgAck})
	if c.legacy {
		c.send(outMsg{head: msgKA})
	}
	return true
}

// cleanup ends what the socket holds once it is closed.
func (c *liveConn) cleanup() {
	c.end(closeNormal, "")
	c.hub.remove(c)
	c.stopWatch()
	c.hub.r.sockets.release(c.viewer.UserID)
	c.mu.Lock()
	subs := make([]*liveSub, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		c.hub.finish(s, nil, false)
	}
}

// end closes the socket with code and reason; the first reason wins. It
// never blocks: the close handshake runs on its own goroutine.
func (c *liveConn) end(code int, reason string) {
	if c.stream != nil {
		c.endStream(code)
		return
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	c.queue, c.backlog = nil, 0
	c.mu.Unlock()
	go c.conn.Close(coderws.StatusCode(code), reason)
}

func (c *liveConn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// send queues a message and reports whether it was queued. A socket whose
// backlog would pass the bound is closed (4413): one slow reader neither
// holds the others back nor grows memory without bound.
func (c *liveConn) send(m outMsg) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.backlog+m.size() > c.hub.maxBacklog() && c.backlog > 0 {
		c.mu.Unlock()
		c.hub.stats.SlowClosed.Add(1)
		c.end(closeSlowConsumer, "too slow: writes backed up")
		return false
	}
	c.queue = append(c.queue, m)
	c.backlog += m.size()
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.flush()
	}
	return true
}

// writeBufs are the buffers messages are assembled in, one per write.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// flush writes what is queued, then ends: an idle socket has no writer.
func (c *liveConn) flush() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closing && c.stream == nil {
			c.writing = false
			c.queue = nil
			last := c.closing && c.stream != nil
			c.mu.Unlock()
			if last {
				// An event stream's closing events are written: it ends.
				c.stream.close()
				close(c.streamDone)
			}
			return
		}
		m := c.queue[0]
		c.queue[0] = outMsg{}
		c.queue = c.queue[1:]
		// The backlog is what waits behind the write under way: a reader
		// that has read this message must not find it still counted when
		// the next one comes (its write returns after the bytes reached
		// the socket, which the reader may already have read).
		c.backlog -= m.size()
		c.mu.Unlock()
		bp := writeBufs.Get().(*[]byte)
		b := append(append((*bp)[:0], m.head...), m.body...)
		if m.body != nil {
			b = append(b, c.tail()...)
		}
		// No deadline of its own (a timer per write): the sweep cuts off a
		// write that has taken longer than wsWriteTimeout.
		c.writing0.Store(c.mono() + 1)
		var err error
		if c.stream != nil {
			err = c.stream.writeEvent(b)
		} else {
			err = c.conn.Write(context.Background(), coderws.MessageText, b)
		}
		c.writing0.Store(0)
		*bp = b[:0]
		if cap(b) <= 64<<10 {
			writeBufs.Put(bp)
		}
		if err != nil {
			c.end(closeNormal, "")
		}
	}
}

// opHead is the start of a message of subscription id, up to its payload.
func (c *liveConn) opHead(id, typ string) []byte {
	if c.stream != nil {
		return sseNext
	}
	b, _ := json.Marshal(id)
	return []byte(`{"id":` + string(b) + `,"type":"` + typ + `","payload":`)
}

func (c *liveConn) sendNext(id string, payload []byte) bool {
	typ := "next"
	if c.legacy {
		typ = "data"
	}
	return c.send(outMsg{head: c.opHead(id, typ), body: payload})
}

func (c *liveConn) sendErrors(id string, errs gqlerror.List) {
	if c.stream != nil {
		c.finishStream(errs)
		return
	}
	b, _ := json.Marshal(errs)
	c.send(outMsg{head: c.opHead(id, "error"), body: b})
}

func (c *liveConn) sendComplete(id string) {
	if c.stream != nil {
		c.finishStream(nil)
		return
	}
	b, _ := json.Marshal(id)
	c.send(outMsg{head: []byte(`{"id":` + string(b) + `,"type":"complete"}`)})
}

// subscribe starts an operation: a subscription joins its group (hub.go);
// a query or mutation runs once.
func (c *liveConn) subscribe(id string, payload json.RawMessage) {
	if id == "" {
		c.end(closeProtocol, "subscribe without an id")
		return
	}
	start := graphql.Now()
	params := &graphql.RawParams{}
	if err := json.Unmarshal(payload, params); err != nil {
		c.sendErrors(id, gqlerror.List{{Message: "invalid json", Extensions: map[string]any{"code": CodeBadRequest}}})
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = c.headers
	ctx := graphql.StartOperationTrace(c.ctx)
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		// As gqlgen's transport did: a protocol error is an error message;
		// an operation refused before it ran (validation, limits, trusted
		// documents) is a result with errors and no data, then complete.
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			c.sendErrors(id, resp.Errors)
			return
		}
		b, _ := json.Marshal(&graphql.Response{Errors: resp.Errors})
		c.sendNext(id, b)
		c.sendComplete(id)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	if rc.Operation.Operation != ast.Subscription {
		go c.once(ctx, id, rc)
		return
	}
	c.hub.subscribe(ctx, c, id, rc)
}

// once runs a query or mutation sent over the socket.
func (c *liveConn) once(ctx context.Context, id string, rc *graphql.OperationContext) {
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	if resp := responses(ctx); resp != nil {
		b, _ := json.Marshal(resp)
		c.sendNext(id, b)
	}
	c.sendComplete(id)
}

// stop ends subscription id at the client's request.
func (c *liveConn) stop(id string) {
	c.mu.Lock()
	s := c.subs[id]
	c.mu.Unlock()
	if s != nil {
		c.hub.finish(s, nil, false)
	}
}

// initToken reads the access token from connection_init: Authorization
// ("Bearer <token>", any case), or authToken / accessToken / token.
func initToken(p transport.InitPayload) string {
	for k, v := range p {
		s, ok := v.(string)
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "authorization":
			if t, present := auth.BearerToken(s); present {
				return t
			}
		case "authtoken", "accesstoken", "token":
			return s
		}
	}
	return ""
}

// sockets counts live sockets per user on this instance.
type sockets struct {
	mu     sync.Mutex
	byUser map[pulid.ID]int
}

func (s *sockets) acquire(user pulid.ID, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUser == nil {
		s.byUser = map[pulid.ID]int{}
	}
	if max > 0 && s.byUser[user] >= max {
		return false
	}
	s.byUser[user]++
	return true
}

func (s *sockets) release(user pulid.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUser[user]--; s.byUser[user] <= 0 {
		delete(s.byUser, user)
	}
}

// errTooManySubscriptions is refused to a socket at its limit.
var errTooManySubscriptions = errors.New("too many subscriptions on this connection")
