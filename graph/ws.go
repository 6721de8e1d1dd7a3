package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

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

// DefaultWebSocketOptions returns the production defaults.
func DefaultWebSocketOptions() WebSocketOptions {
	return WebSocketOptions{MaxConnectionsPerUser: 10, MaxSubscriptions: 20, IdleTimeout: 5 * time.Minute, PingInterval: 25 * time.Second}
}

// WebSocket close codes (graphql-transport-ws and RFC 6455 application
// range). Clients reconnect with a fresh token on 4401 and sign in again
// on 4403.
const (
	closeUnauthorized    = 4401 // the access token expired
	closeForbidden       = 4403 // no valid token, or the session ended
	closeIdle            = 4408 // no subscription for IdleTimeout
	closeTooManyRequests = 4429 // too many sockets for this user
	// closeTryAgain (RFC 6455 "try again later") closes a socket whose
	// session this instance cannot check right now (Redis unreachable while
	// the revocation bus is down): it fails closed; reconnect shortly.
	closeTryAgain = 1013
)

// liveConn is one socket: the viewer behind it and how it will end.
type liveConn struct {
	conn   transport.WebsocketConn
	mu     sync.Mutex
	code   int
	reason string
	subs   atomic.Int32
	// idle is when the socket last had no subscription, as 1 + nanoseconds
	// since epoch on the monotonic clock; 0 while it has one.
	idle  atomic.Int64
	epoch time.Time
}

// markIdle records that the socket has no subscription from now on.
func (c *liveConn) markIdle() { c.idle.Store(int64(time.Since(c.epoch)) + 1) }

// idleFor is how long the socket has had no subscription (0 while it has).
func (c *liveConn) idleFor() time.Duration {
	since := c.idle.Load()
	if since == 0 {
		return 0
	}
	return time.Since(c.epoch) - time.Duration(since-1)
}

// end records why the socket closes; the first reason wins.
func (c *liveConn) end(code int, reason string) {
	c.mu.Lock()
	if c.code == 0 {
		c.code, c.reason = code, reason
	}
	c.mu.Unlock()
}

type liveConnKey struct{}

func liveConnFrom(ctx context.Context) *liveConn {
	c, _ := ctx.Value(liveConnKey{}).(*liveConn)
	return c
}

// wsImpl accepts sockets through coder/websocket and remembers each one in
// the request's context, so the init function can later close it with the
// protocol's code rather than gqlgen's "normal closure".
type wsImpl struct {
	inner transport.CoderWebsocketImplementation
}

func (w wsImpl) Accept(rw http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := w.inner.Accept(rw, r, o)
	if err != nil {
		return nil, err
	}
	lc := liveConnFrom(r.Context())
	if lc == nil {
		return conn, nil
	}
	lc.conn = conn
	return &closingConn{WebsocketConn: conn, lc: lc}, nil
}

// closingConn substitutes the recorded close code and reason when gqlgen
// closes the socket because its context ended.
type closingConn struct {
	transport.WebsocketConn
	lc *liveConn
}

func (c *closingConn) WriteClose(code int, msg string) error {
	c.lc.mu.Lock()
	if c.lc.code != 0 && code == transport.WebsocketCloseNormalClosure {
		code, msg = c.lc.code, c.lc.reason
	}
	c.lc.mu.Unlock()
	return c.WebsocketConn.WriteClose(code, msg)
}

func (c *closingConn) SetReadLimit(n int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(n)
	}
}

func (c *closingConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
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

// websocketTransport is the subscription transport: both subprotocols, the
// access token in connection_init, and sockets that end with their session.
func (r *Resolver) websocketTransport(o WebSocketOptions) transport.Websocket {
	return transport.Websocket{
		Implementation: wsImpl{transport.CoderWebsocketImplementation{
			AcceptOptions: coderws.AcceptOptions{OriginPatterns: o.OriginPatterns},
		}},
		InitTimeout:           SocketInitTimeout,
		KeepAlivePingInterval: o.PingInterval,
		PingPongInterval:      o.PingInterval,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			return r.initSocket(ctx, p, o)
		},
	}
}

// initSocket authenticates connection_init and starts the watch that ends
// the socket with its session.
func (r *Resolver) initSocket(ctx context.Context, p transport.InitPayload, o WebSocketOptions) (context.Context, *transport.InitPayload, error) {
	token := initToken(p)
	if token == "" {
		return transport.WithWebsocketCloseCode(ctx, closeForbidden), nil, errors.New("connection_init must carry Authorization: Bearer <access token>")
	}
	live, code, err := r.goLive(ctx, token, o)
	if err != nil {
		return transport.WithWebsocketCloseCode(ctx, code), nil, err
	}
	return live, nil, nil
}

// errTooManyConnections refuses a live connection (a socket, an event
// stream) over its user's cap.
var errTooManyConnections = errors.New("too many open connections for this user")

// goLive authenticates the access token of a live connection (a socket's
// connection_init, an event stream's request), counts the connection
// against its user's cap, and starts the watch that ends it with its
// session: the returned context carries the viewer and the connection, and
// ends then. On error, code is the WebSocket close code that says why.
func (r *Resolver) goLive(ctx context.Context, token string, o WebSocketOptions) (live context.Context, code int, err error) {
	v, revoked, stopWatch, err := r.sessions.AuthenticateLive(ctx, token)
	if errors.Is(err, rdb.ErrUnavailable) {
		return nil, closeTryAgain, err
	}
	if err != nil {
		return nil, closeForbidden, err
	}
	if !r.sockets.acquire(v.UserID, o.MaxConnectionsPerUser) {
		stopWatch()
		return nil, closeTooManyRequests, errTooManyConnections
	}
	if done, ok := ctx.Value(socketInitKey{}).(func()); ok {
		done()
	}
	lc := liveConnFrom(ctx)
	if lc == nil {
		lc = &liveConn{}
	}
	lc.epoch = time.Now()
	lc.markIdle()
	ctx, cancel := context.WithCancel(auth.NewContext(ctx, v))
	ctx = context.WithValue(ctx, liveConnKey{}, lc)
	go func() {
		defer r.sockets.release(v.UserID)
		defer stopWatch()
		r.watchSocket(ctx, cancel, v, revoked, lc, o)
	}()
	return ctx, 0, nil
}

// watchSocket ends the socket when the session is revoked (from memory,
// at once), when the access token expires, or after IdleTimeout without a
// subscription. While this process is not synced it re-checks the session
// in Redis and the ledger every half second, so a revocation it could have
// missed still closes the socket within a second; if it cannot check at
// all, it closes the socket (1013, try again later) rather than trust it.
func (r *Resolver) watchSocket(ctx context.Context, cancel context.CancelFunc, v auth.Viewer, revoked <-chan struct{}, lc *liveConn, o WebSocketOptions) {
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastCheck := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-revoked:
			lc.end(closeForbidden, "session ended")
			return
		case <-tick.C:
		}
		if !r.sessions.Tokens().Now().Before(v.ExpiresAt) {
			lc.end(closeUnauthorized, "access token expired")
			return
		}
		if o.IdleTimeout > 0 && lc.idleFor() > o.IdleTimeout {
			lc.end(closeIdle, "idle")
			return
		}
		if !r.sessions.Synced() && time.Since(lastCheck) >= 500*time.Millisecond {
			lastCheck = time.Now()
			switch err := r.sessions.Check(ctx, v); {
			case errors.Is(err, rdb.ErrUnavailable):
				r.log.WarnContext(ctx, "cannot check a live connection's session: closing it", slog.Any("error", err))
				lc.end(closeTryAgain, "session cannot be checked; reconnect shortly")
				return
			case err != nil:
				lc.end(closeForbidden, "session ended")
				return
			}
		}
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

// errTooManySubscriptions is refused to a socket at its limit.
var errTooManySubscriptions = errors.New("too many subscriptions on this connection")

// startSubscription counts a subscription against its socket's limit; the
// returned function ends it.
func (r *Resolver) startSubscription(ctx context.Context) (func(), error) {
	lc := liveConnFrom(ctx)
	if lc == nil {
		return func() {}, nil
	}
	if int(lc.subs.Add(1)) > r.ws.MaxSubscriptions && r.ws.MaxSubscriptions > 0 {
		lc.subs.Add(-1)
		return nil, errTooManySubscriptions
	}
	lc.idle.Store(0)
	return func() {
		if lc.subs.Add(-1) == 0 {
			lc.markIdle()
		}
	}, nil
}
