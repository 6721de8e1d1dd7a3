package graph

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// LiveStats count what the WebSocket transport does; the server exports
// them as metrics.
type LiveStats struct {
	Sockets       atomic.Int64 // open, authenticated sockets
	Subscriptions atomic.Int64 // running subscriptions
	Groups        atomic.Int64 // distinct (document, variables, visibility) being resolved
	Resolutions   atomic.Int64 // events resolved (once per group)
	Delivered     atomic.Int64 // event messages queued to sockets
	SlowClosed    atomic.Int64 // sockets closed with 4413
}

// hub holds the open sockets and the groups their subscriptions share.
//
// A group is every subscription with the same document, variables and
// visibility: it is executed once, as one gqlgen subscription, and each
// event's response is marshalled once and the same bytes queued to every
// member. Visibility is who the response may depend on: a document that
// selects a field decided per viewer (User.email, any @hasRole field) is
// grouped per user, and resolved as that user; any other is the same for
// every authenticated viewer.
//
// One goroutine sweeps every socket's timers (token expiry, idle,
// keep-alive; re-checks while revocations cannot be trusted) four times a
// second while there are sockets; none is left when there are none.
type hub struct {
	r       *Resolver
	o       WebSocketOptions
	stats   *LiveStats
	observe func(context.Context, Operation)

	mu       sync.Mutex
	socks    map[*liveConn]struct{}
	groups   map[string]*subGroup
	sweeping bool
	scratch  []*liveConn
	checking atomic.Bool
	checked  time.Time
}

func newHub(r *Resolver, o WebSocketOptions, stats *LiveStats, observe func(context.Context, Operation)) *hub {
	if stats == nil {
		stats = &LiveStats{}
	}
	return &hub{r: r, o: o, stats: stats, observe: observe, socks: map[*liveConn]struct{}{}, groups: map[string]*subGroup{}}
}

func (h *hub) maxBacklog() int {
	if h.o.MaxBacklog > 0 {
		return h.o.MaxBacklog
	}
	return DefaultMaxBacklog
}

// liveSub is one subscription of one socket.
type liveSub struct {
	c      *liveConn
	id     string
	head   []byte // the message up to its payload
	op     Operation
	start  time.Time
	events atomic.Int64
	group  *subGroup
}

// subGroup is the subscriptions that share every event's bytes.
type subGroup struct {
	key     string
	user    pulid.ID // the viewer it is resolved as, if grouped per user
	cost    int
	cancel  context.CancelFunc    // under hub.mu; nil until the group runs
	members map[*liveSub]struct{} // under hub.mu
	ready   chan struct{}         // closed once its subscription is executed
}

type groupKey struct{}

// inGroup reports whether ctx is a group's: its subscription resolver
// neither counts nor charges (the hub does, per member).
func inGroup(ctx context.Context) bool { return ctx.Value(groupKey{}) != nil }

func (h *hub) add(c *liveConn) {
	h.stats.Sockets.Add(1)
	h.mu.Lock()
	h.socks[c] = struct{}{}
	if !h.sweeping {
		h.sweeping = true
		go h.sweep()
	}
	h.mu.Unlock()
}

func (h *hub) remove(c *liveConn) {
	h.mu.Lock()
	if _, ok := h.socks[c]; ok {
		delete(h.socks, c)
		h.stats.Sockets.Add(-1)
	}
	h.mu.Unlock()
}

// subscribe adds a subscription to its group, starting the group if it is
// the first.
func (h *hub) subscribe(ctx context.Context, c *liveConn, id string, rc *graphql.OperationContext) {
	s := &liveSub{c: c, id: id, start: time.Now()}
	s.op = Operation{Name: rc.Operation.Name, Type: string(ast.Subscription), UserID: c.viewer.UserID, Subscription: "started"}
	if st := extension.GetComplexityStats(ctx); st != nil {
		s.op.Complexity = st.Complexity
	}
	typ := "next"
	if c.legacy {
		typ = "data"
	}
	s.head = c.opHead(id, typ)
	c.mu.Lock()
	switch {
	case c.subs[id] != nil:
		c.mu.Unlock()
		c.end(closeDuplicateID, "subscriber for "+id+" already exists")
		return
	case h.o.MaxSubscriptions > 0 && len(c.subs) >= h.o.MaxSubscriptions:
		c.mu.Unlock()
		c.sendErrors(id, gqlerror.List{errorPresenter(h.r.log)(ctx, errTooManySubscriptions)})
		return
	}
	c.subs[id] = s
	c.idle.Store(0)
	c.mu.Unlock()
	h.stats.Subscriptions.Add(1)
	h.report(c.ctx, s.op)

	key, user := groupOf(rc, c.viewer)
	h.mu.Lock()
	g := h.groups[key]
	first := g == nil
	if first {
		g = &subGroup{key: key, user: user, cost: max(s.op.Complexity, 1), members: map[*liveSub]struct{}{}, ready: make(chan struct{})}
		h.groups[key] = g
		h.stats.Groups.Add(1)
	}
	g.members[s] = struct{}{}
	s.group = g
	h.mu.Unlock()
	if !first {
		<-g.ready
		return
	}
	// The group's subscription is executed here, before the socket reads
	// its next message: once a client has its answer to a later message
	// (a ping), events published reach this subscription.
	gctx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), groupKey{}, g))
	h.mu.Lock()
	g.cancel = cancel
	if len(g.members) == 0 {
		cancel()
	}
	h.mu.Unlock()
	responses, gctx := c.exec.DispatchOperation(gctx, rc)
	close(g.ready)
	go h.run(gctx, g, responses)
}

// groupOf is the key of the group a subscription joins, and the user it is
// resolved as if the document depends on who asks: a field whose
// @cacheControl scope is PRIVATE or PRIVATE_PER_ROLE (User.email, @hasRole
// fields; TestViewerDependentFieldsAreCachedPrivately holds that list
// complete) groups the subscription with its own user's only.
func groupOf(rc *graphql.OperationContext, v auth.Viewer) (string, pulid.ID) {
	vars, _ := json.Marshal(rc.Variables) // map keys sorted: one text per value
	key := rc.RawQuery + "\x00" + rc.OperationName + "\x00" + string(vars)
	walk := walkWith[cacheNeeds](rc.Doc, cacheNeedsOf{})
	if walk.set(rc.Operation.SelectionSet)&(perViewer|perRole) != 0 {
		return key + "\x00u:" + string(v.UserID), v.UserID
	}
	return key + "\x00any", ""
}

// run executes a group's subscription: each event is resolved once, its
// response marshalled once, charged to each member's user (one budget
// call per user, not per socket), and the same bytes queued to every
// member that paid.
func (h *hub) run(ctx context.Context, g *subGroup, responses graphql.ResponseHandler) {
	defer h.stats.Groups.Add(-1)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		b, err := json.Marshal(resp)
		if err != nil {
			h.r.log.ErrorContext(ctx, "marshal subscription event", slog.Any("error", err))
			continue
		}
		h.stats.Resolutions.Add(1)
		for _, s := range h.admit(ctx, g) {
			if s.c.send(outMsg{head: s.head, body: b}) {
				s.events.Add(1)
				h.stats.Delivered.Add(1)
			}
		}
	}
	// The group's source ended (its members left, or the resolver ended):
	// whoever is still in it is done.
	for _, s := range h.members(g) {
		h.finish(s, nil, true)
	}
}

func (h *hub) members(g *subGroup) []*liveSub {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*liveSub, 0, len(g.members))
	for s := range g.members {
		out = append(out, s)
	}
	return out
}

// admit charges an event to the API budget of every member's user, the
// subscription's complexity per member, in one call per user; members
// whose budget (or Redis) refuses end with that error (RATE_LIMITED with
// retryAfter, or SERVICE_UNAVAILABLE) and get no more events.
func (h *hub) admit(ctx context.Context, g *subGroup) []*liveSub {
	members := h.members(g)
	if h.r.limiter == nil || len(members) == 0 {
		return members
	}
	byUser := map[pulid.ID][]*liveSub{}
	for _, s := range members {
		byUser[s.c.viewer.UserID] = append(byUser[s.c.viewer.UserID], s)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		admitted = make([]*liveSub, 0, len(members))
		sem      = make(chan struct{}, 16)
	)
	for user, subs := range byUser {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A socket is always authenticated: the budget is the user's,
			// whatever the address.
			err := h.r.limiter.API(ctx, user, "", g.cost*len(subs))
			if err != nil {
				gerr := errorPresenter(h.r.log)(ctx, err)
				for _, s := range subs {
					h.finish(s, gqlerror.List{gerr}, false)
				}
				return
			}
			mu.Lock()
			admitted = append(admitted, subs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return admitted
}

// finish ends a subscription once: with errs (an error message), or with
// complete when the server ends it; nothing when the client did or the
// socket closed. Its end is reported with how long it ran and how many
// events it delivered.
func (h *hub) finish(s *liveSub, errs gqlerror.List, complete bool) {
	c := s.c
	c.mu.Lock()
	if c.subs[s.id] != s {
		c.mu.Unlock()
		return
	}
	delete(c.subs, s.id)
	if len(c.subs) == 0 {
		c.markIdle()
	}
	c.mu.Unlock()
	h.mu.Lock()
	if g := s.group; g != nil {
		delete(g.members, s)
		if len(g.members) == 0 {
			if h.groups[g.key] == g {
				delete(h.groups, g.key)
			}
			if g.cancel != nil {
				g.cancel()
			}
		}
	}
	h.mu.Unlock()
	h.stats.Subscriptions.Add(-1)
	switch {
	case errs != nil:
		c.sendErrors(s.id, errs)
	case complete:
		c.sendComplete(s.id)
	}
	op := s.op
	op.Subscription, op.Duration, op.Events = "ended", time.Since(s.start), s.events.Load()
	for _, e := range errs {
		if code, _ := e.Extensions["code"].(string); code != "" {
			op.Codes = append(op.Codes, code)
		}
	}
	h.report(c.ctx, op)
}

func (h *hub) report(ctx context.Context, op Operation) {
	if h.observe != nil {
		h.observe(ctx, op)
	}
}

// sweepInterval is how often the hub looks at every socket's timers.
const sweepInterval = 250 * time.Millisecond

// recheckInterval spaces re-checks of every session in Redis while this
// process's revocation set cannot be trusted.
const recheckInterval = 500 * time.Millisecond

// sweep ends sockets whose token expired or that stayed idle too long,
// sends keep-alives, drops graphql-transport-ws peers that stopped
// answering pings, and, while revocations cannot be trusted from memory,
// re-checks every session in Redis. It returns once no socket is left.
func (h *hub) sweep() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for range t.C {
		h.mu.Lock()
		if len(h.socks) == 0 {
			h.sweeping = false
			h.mu.Unlock()
			return
		}
		socks := h.scratch[:0]
		for c := range h.socks {
			socks = append(socks, c)
		}
		h.mu.Unlock()
		now := h.r.sessions.Tokens().Now()
		for _, c := range socks {
			h.tick(c, now)
		}
		if !h.r.sessions.Synced() && time.Since(h.checked) >= recheckInterval && h.checking.CompareAndSwap(false, true) {
			h.checked = time.Now()
			go h.recheck(append([]*liveConn(nil), socks...))
		}
		clear(socks)
		h.scratch = socks[:0]
	}
}

func (h *hub) tick(c *liveConn, now time.Time) {
	switch {
	case !now.Before(c.viewer.ExpiresAt):
		c.end(closeUnauthorized, "access token expired")
		return
	case h.o.IdleTimeout > 0 && c.idleFor() > h.o.IdleTimeout:
		c.end(closeIdle, "idle")
		return
	}
	mono := c.mono()
	if w := c.writing0.Load(); w != 0 && mono-(w-1) > int64(wsWriteTimeout) {
		c.closeNow() // the peer has not taken a message for that long
		return
	}
	every := int64(h.o.PingInterval)
	if every <= 0 {
		return
	}
	if !c.legacy && c.stream == nil && mono-c.lastRead.Load() > 2*every+int64(sweepInterval) {
		// Nothing read, not even a pong, for two pings: the peer is gone.
		c.conn.CloseNow()
		return
	}
	if mono-c.lastPing.Load() >= every {
		c.lastPing.Store(mono)
		switch {
		case c.stream != nil:
			c.send(outMsg{head: sseKeepAlive})
		case c.legacy:
			c.send(outMsg{head: msgKA})
		default:
			c.send(outMsg{head: msgPing})
		}
	}
}

// recheck asks Redis (and the ledger) about every socket's session while
// this process is not synced, so a revocation it could have missed still
// closes the socket within a second; a socket it cannot check is closed
// (1013, try again later) rather than trusted.
func (h *hub) recheck(socks []*liveConn) {
	defer h.checking.Store(false)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, c := range socks {
		if c.isClosing() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			switch err := h.r.sessions.Check(c.ctx, c.viewer); {
			case errors.Is(err, rdb.ErrUnavailable):
				h.r.log.WarnContext(c.ctx, "cannot check a live connection's session: closing it", slog.Any("error", err))
				c.end(closeTryAgain, "session cannot be checked; reconnect shortly")
			case err != nil:
				c.end(closeForbidden, "session ended")
			}
		}()
	}
	wg.Wait()
}
