package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// sync sends a ping and reads until its pong: the server handles a socket's
// messages in order, so every subscribe sent before is live once it
// returns (graphql-transport-ws only).
func (c *wsClient) sync() {
	c.t.Helper()
	c.send(wsMsg{Type: "ping"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for pong: %v", err)
		}
		var m wsMsg
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "pong":
			return
		case "ping":
			c.send(wsMsg{Type: "pong"})
		case "connection_ack":
		default:
			c.t.Fatalf("waiting for pong: got %s %s %s", m.Type, m.ID, m.Payload)
		}
	}
}

// A subscription is logged and counted once when it starts and once when
// it ends (with its lifetime and the events it delivered), under its
// operation's name and its user, never per event; its lifetime is not
// compared with the slow-operation threshold.
func TestSubscriptionLoggedPerSubscription(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_LOG_LEVEL"] = "info"
	e.env["APP_SLOW_THRESHOLD"] = "1ms"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	c, ack, err := dialWS(t, s, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	c.subscribe("1", `subscription Feed { postCreated { id title } }`, nil)
	c.sync()
	const events = 3
	for i := range events {
		s.createPost(t, tok.Access, fmt.Sprintf("post %d", i), "body")
		c.next("1")
	}
	time.Sleep(20 * time.Millisecond) // lifetime past the slow threshold
	c.send(wsMsg{ID: "1", Type: "complete"})
	c.sync()

	logs := s.logs.String()
	started := regexp.MustCompile(`msg="subscription started".*operation=Feed type=subscription user_id=` + regexp.QuoteMeta(userID(t, s, tok.Access)))
	ended := regexp.MustCompile(`msg="subscription ended".*operation=Feed type=subscription user_id=\S+ duration_ms=\S+ events=3 outcome=ok`)
	if n := len(started.FindAllString(logs, -1)); n != 1 {
		t.Errorf("%d 'subscription started' lines with operation and user, want 1:\n%s", n, logs)
	}
	if n := len(ended.FindAllString(logs, -1)); n != 1 {
		t.Errorf("%d 'subscription ended' lines with events=%d, want 1:\n%s", n, events, logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "type=subscription") && (strings.Contains(line, `msg="graphql operation"`) || strings.Contains(line, `msg="slow operation"`)) {
			t.Errorf("per-event line: %s", line)
		}
	}
	if got := s.app.metrics.live.Subscriptions.Load(); got != 0 {
		t.Errorf("subscriptions_active=%d after complete, want 0", got)
	}
}

func userID(t *testing.T, s *testServer, token string) string {
	t.Helper()
	return s.do(t, token, `{ me { id } }`, nil).mustOK(t).str("me.id")
}

// An event is resolved once per (document, variables, visibility) and
// every socket of a group gets the same bytes; a document that selects
// User.email is grouped per viewer, so each viewer sees only what they may:
// the author their own e-mail, another user null.
func TestSubscriptionGroupsByVisibility(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := s.register(t, "bob@example.com", "plum-tree-42", "Bob")
	const (
		private = `subscription { postCreated { id author { name email } } }`
		public  = `subscription { postCreated { id title author { name } } }`
	)
	open := func(tok tokens, query string) *wsClient {
		c, ack, err := dialWS(t, s, tok.Access, false)
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("init: %v %+v", err, ack)
		}
		c.subscribe("1", query, nil)
		c.sync()
		return c
	}
	annPrivate, bobPrivate := open(ann, private), open(bob, private)
	publics := []*wsClient{open(ann, public), open(bob, public), open(bob, public)}
	if got := s.app.metrics.live.Groups.Load(); got != 3 {
		t.Fatalf("groups=%d, want 3 (Ann's and Bob's e-mail documents, one shared)", got)
	}
	before := s.app.metrics.live.Resolutions.Load()
	id := s.createPost(t, ann.Access, "hello", "world")

	author := func(c *wsClient) map[string]any {
		t.Helper()
		p := c.next("1")["postCreated"].(map[string]any)
		if p["id"] != id {
			t.Fatalf("event for %v, want %v", p["id"], id)
		}
		return p["author"].(map[string]any)
	}
	if got := author(annPrivate)["email"]; got != "ann@example.com" {
		t.Errorf("Ann, the author, sees email=%v", got)
	}
	if got, ok := author(bobPrivate)["email"]; !ok || got != nil {
		t.Errorf("Bob sees Ann's email=%v (present %v), want null", got, ok)
	}
	var raw []string
	for _, c := range publics {
		_, b, err := c.conn.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, string(b))
	}
	for _, r := range raw[1:] {
		if r != raw[0] {
			t.Errorf("sockets sharing a document got different messages:\n%s\n%s", raw[0], r)
		}
	}
	if strings.Contains(raw[0], "email") {
		t.Errorf("shared document carries email: %s", raw[0])
	}
	if got := s.app.metrics.live.Resolutions.Load() - before; got != 3 {
		t.Errorf("event resolved %d times for 5 subscriptions in 3 groups, want 3", got)
	}
}

// A socket costs one goroutine on the server (the one reading it) once it
// is quiet: no ticker, keep-alive, watch or subscription goroutine of its
// own. Counted over real sockets, client goroutines included.
func TestIdleSocketsCostOneGoroutine(t *testing.T) {
	e := newTestEnv(t)
	e.env["APP_WS_MAX_CONNECTIONS_PER_USER"] = "0"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	open := func() *wsClient {
		c, ack, err := dialWS(t, s, tok.Access, false)
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("init: %v %+v", err, ack)
		}
		c.subscribe("1", `subscription { postCreated { id } }`, nil)
		c.subscribe("2", `subscription { postDeleted }`, nil)
		c.sync()
		return c
	}
	open() // the groups and the sweep exist from the first socket on
	settle := func() int {
		var n int
		for range 20 { // writers and handshakes finish
			time.Sleep(50 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		return n
	}
	before := settle()
	const sockets = 40
	for range sockets {
		open()
	}
	per := float64(settle()-before) / sockets
	t.Logf("%.2f goroutines per socket with two subscriptions, client and server", per)
	// The client's side of a coder/websocket connection has no goroutine:
	// what is left is the server's reader.
	if per > 1.1 {
		t.Errorf("%.2f goroutines per idle socket, want 1", per)
	}
}

// A socket that stops reading is closed with 4413 once more than
// APP_WS_MAX_BACKLOG bytes wait for it, and meanwhile every event reaches a
// socket that reads as fast as it did with nobody stalled.
func TestStalledSocketClosedWithoutHoldingOthers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_WS_MAX_BACKLOG"] = "65536"
	e.env["APP_RATE_API"] = "100000/1h"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const query = `subscription { postCreated { id content } }`
	stalled, ack, err := dialWS(t, s, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	stalled.conn.SetReadLimit(1 << 20)
	stalled.subscribe("1", query, nil)
	stalled.sync() // and then reads nothing more until the end
	fast, ack, err := dialWS(t, s, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	fast.conn.SetReadLimit(1 << 20)
	fast.subscribe("1", query, nil)
	fast.sync()

	content := strings.Repeat("x", 50000)
	var worst time.Duration
	i := 0
	defer func() { t.Logf("%d events until the stalled socket was closed", i) }()
	for ; s.app.metrics.live.SlowClosed.Load() == 0; i++ {
		if i == 400 {
			t.Fatalf("the stalled socket is still open after %d events of 50 KB", i)
		}
		id := s.createPost(t, tok.Access, fmt.Sprintf("post %d", i), content)
		start := time.Now()
		if got := fast.next("1")["postCreated"].(map[string]any)["id"]; got != id {
			t.Fatalf("fast socket got %v, want %v", got, id)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest event to the reading socket, after its mutation answered: %v", worst)
	closing := time.Now()
	defer func() { t.Logf("close code read %v after the socket was closed", time.Since(closing)) }()
	if worst > 2*time.Second {
		t.Errorf("the reading socket waited %v for an event while another stalled", worst)
	}
	if code := stalled.closedWith(20 * time.Second); code != 4413 {
		t.Errorf("stalled socket closed with %d, want 4413", code)
	}
}

// The open-file limit, which bounds the sockets an instance holds, is
// logged once at start-up.
func TestStartupLogsOpenFileLimit(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	line := regexp.MustCompile(`msg="open-file limit[^"]*" soft=(\d+) hard=(\d+)`).FindStringSubmatch(s.logs.String())
	if line == nil {
		t.Fatalf("no open-file limit line at start-up:\n%s", s.logs.String())
	}
	if line[1] != line[2] && runtime.GOOS == "linux" {
		t.Errorf("soft limit %s below the hard one %s: Go raises it at start-up", line[1], line[2])
	}
}
