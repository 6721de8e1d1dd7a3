package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// wsClient speaks graphql-transport-ws (or legacy graphql-ws) to a test
// server.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	legacy bool
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a socket and sends connection_init with the token; it
// returns the client and the first server message (ack or error).
func dialWS(t *testing.T, s *testServer, token string, legacy bool) (*wsClient, wsMsg, error) {
	t.Helper()
	proto := "graphql-transport-ws"
	if legacy {
		proto = "graphql-ws"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &wsClient{t: t, conn: conn, legacy: legacy}
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	c.send(wsMsg{Type: "connection_init", Payload: mustJSON(payload)})
	m, err := c.read(5 * time.Second)
	return c, m, err
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (c *wsClient) send(m wsMsg) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// read returns the next message that is not a keep-alive.
func (c *wsClient) read(timeout time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMsg{}, err
		}
		switch m.Type {
		case "ka", "ping", "pong":
			if m.Type == "ping" {
				c.send(wsMsg{Type: "pong"})
			}
			continue
		}
		return m, nil
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	typ := "subscribe"
	if c.legacy {
		typ = "start"
	}
	c.send(wsMsg{ID: id, Type: typ, Payload: mustJSON(map[string]any{"query": query, "variables": vars})})
}

// next waits for the next data message of subscription id.
func (c *wsClient) next(id string) map[string]any {
	c.t.Helper()
	m, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for an event: %v", err)
	}
	if m.ID != id || (m.Type != "next" && m.Type != "data") {
		c.t.Fatalf("got %s %s: %s", m.Type, m.ID, m.Payload)
	}
	var p struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	_ = json.Unmarshal(m.Payload, &p)
	if len(p.Errors) > 0 {
		c.t.Fatalf("event with errors: %+v", p.Errors)
	}
	return p.Data
}

// awaitLive waits until subscription id is live. Subscribe messages get no
// answer and run concurrently, so it makes probe writes until id receives
// the event of one. probe writes and returns what the last probe's events
// carry, by subscription id (a post's id, a title), for every live
// subscription it reaches; awaitLive then reads until each of them has
// arrived, so no probe's event is left for the test to read: a
// subscription delivers events in the order they were published, and a
// write publishes its event before it returns.
func (c *wsClient) awaitLive(id string, probe func() map[string]string) {
	c.t.Helper()
	type result struct {
		m   wsMsg
		err error
	}
	res := make(chan result, 1)
	readNext := func() {
		go func() {
			m, err := c.read(10 * time.Second)
			res <- result{m, err}
		}()
	}
	var got []wsMsg
	take := func(r result) bool {
		c.t.Helper()
		if r.err != nil || (r.m.Type != "next" && r.m.Type != "data") {
			c.t.Fatalf("waiting for subscription %s to go live: %v %s %s %s", id, r.err, r.m.Type, r.m.ID, r.m.Payload)
		}
		got = append(got, r.m)
		return r.m.ID == id
	}
	var last map[string]string
	readNext()
	for live, deadline := false, time.Now().Add(10*time.Second); !live; {
		if time.Now().After(deadline) {
			c.t.Fatalf("subscription %s got no event of probes made for 10s", id)
		}
		last = probe()
		select {
		case r := <-res:
			if live = take(r); !live {
				readNext()
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	for sub, marker := range last {
		for !slices.ContainsFunc(got, func(m wsMsg) bool { return m.ID == sub && strings.Contains(string(m.Payload), marker) }) {
			readNext()
			take(<-res)
		}
	}
}

// closedWith waits until the server closes the socket and returns the code.
func (c *wsClient) closedWith(within time.Duration) websocket.StatusCode {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := c.read(time.Until(deadline))
		if err == nil {
			continue
		}
		if code := websocket.CloseStatus(err); code != -1 {
			return code
		}
		c.t.Fatalf("socket not closed within %v: %v", within, err)
	}
}

// A post created through instance B reaches a subscriber on instance A,
// with both subprotocols; updates are filtered by id; deletions carry ids.
func TestSubscriptionsFanOutAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	tok := b.register(t, "ann@example.com", "plum-tree-42", "Ann")
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			c, ack, err := dialWS(t, a, tok.Access, legacy)
			if err != nil || ack.Type != "connection_ack" {
				t.Fatalf("init: %v %+v", err, ack)
			}
			c.subscribe("1", `subscription { postCreated { id title author { name } } }`, nil)
			c.subscribe("2", `subscription { postDeleted }`, nil)
			awaitCreatedAndDeleted(t, c, b, tok.Access)
			id := b.createPost(t, tok.Access, "hello", "world")
			data := c.next("1")
			post := data["postCreated"].(map[string]any)
			if post["id"] != id || post["title"] != "hello" || post["author"].(map[string]any)["name"] != "Ann" {
				t.Errorf("postCreated=%v", post)
			}
			c.subscribe("3", `subscription($id: ID!) { postUpdated(id: $id) { title } }`, map[string]any{"id": id})
			probes := 0
			c.awaitLive("3", func() map[string]string {
				probes++
				title := fmt.Sprintf("probe %d", probes)
				b.do(t, tok.Access, `mutation($id: ID!, $t: String!) { updatePost(id: $id, input: {title: $t}) { id } }`, map[string]any{"id": id, "t": title}).mustOK(t)
				return map[string]string{"3": `"` + title + `"`}
			})
			other := b.createPost(t, tok.Access, "other", "x")
			c.next("1") // the second creation
			b.do(t, tok.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "edited"}) { id } }`, map[string]any{"id": other}).mustOK(t)
			b.do(t, tok.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "changed"}) { id } }`, map[string]any{"id": id}).mustOK(t)
			if got := c.next("3")["postUpdated"].(map[string]any)["title"]; got != "changed" {
				t.Errorf("postUpdated title=%v, want changed (the other post's update is filtered out)", got)
			}
			b.do(t, tok.Access, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
			if got := c.next("2")["postDeleted"]; got != id {
				t.Errorf("postDeleted=%v, want %v", got, id)
			}
		})
	}
}

// awaitCreatedAndDeleted waits until subscriptions "1" (postCreated, with
// the post's id) and "2" (postDeleted) of c are live, writing through s.
func awaitCreatedAndDeleted(t *testing.T, c *wsClient, s *testServer, token string) {
	t.Helper()
	c.awaitLive("1", func() map[string]string {
		id := s.createPost(t, token, "probe", "live yet?")
		return map[string]string{"1": `"` + id + `"`}
	})
	c.awaitLive("2", func() map[string]string {
		id := s.createPost(t, token, "probe", "live yet?")
		s.do(t, token, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
		return map[string]string{"1": `"` + id + `"`, "2": `"` + id + `"`}
	})
}

func TestSubscriptionsNeedAuthentication(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	for name, token := range map[string]string{"no token": "", "bad token": "not-a-token"} {
		c, first, err := dialWS(t, s, token, false)
		if err == nil && first.Type == "connection_ack" {
			t.Errorf("%s: connection acknowledged", name)
			continue
		}
		if err == nil {
			if code := c.closedWith(2 * time.Second); code != 4403 {
				t.Errorf("%s: close code %d, want 4403", name, code)
			}
		} else if code := websocket.CloseStatus(err); code != 4403 {
			t.Errorf("%s: close code %d (%v), want 4403", name, code, err)
		}
	}
}

// Revocation reaches live connections: a logout served by another
// instance closes the socket within a second, with 4403; an expired token
// closes it with 4401.
func TestSubscriptionSocketEndsWithSession(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	tok := b.register(t, "ann@example.com", "plum-tree-42", "Ann")
	c, ack, err := dialWS(t, a, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	c.subscribe("1", `subscription { postCreated { id } }`, nil)
	start := time.Now()
	b.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
	if code := c.closedWith(time.Second); code != 4403 {
		t.Errorf("after logout on the other instance: close code %d, want 4403", code)
	}
	t.Logf("socket closed %v after the logout", time.Since(start))

	tok2 := b.login(t, "ann@example.com", "plum-tree-42")
	c2, ack, err := dialWS(t, a, tok2.Access, true)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	c2.subscribe("1", `subscription { postCreated { id } }`, nil)
	e.clock.Advance(16 * time.Minute)
	if code := c2.closedWith(time.Second); code != 4401 {
		t.Errorf("after the token expired: close code %d, want 4401", code)
	}
}

func TestWebSocketLimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_WS_MAX_CONNECTIONS_PER_USER"] = "2"
	e.env["APP_WS_MAX_SUBSCRIPTIONS"] = "2"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	c1, ack, _ := dialWS(t, s, tok.Access, false)
	if ack.Type != "connection_ack" {
		t.Fatalf("first socket: %+v", ack)
	}
	if _, ack, _ := dialWS(t, s, tok.Access, false); ack.Type != "connection_ack" {
		t.Fatalf("second socket: %+v", ack)
	}
	c3, first, err := dialWS(t, s, tok.Access, false)
	switch {
	case err == nil && first.Type == "connection_ack":
		t.Error("third socket acknowledged")
	case err == nil:
		if code := c3.closedWith(2 * time.Second); code != 4429 {
			t.Errorf("third socket: close code %d, want 4429", code)
		}
	default:
		if code := websocket.CloseStatus(err); code != 4429 {
			t.Errorf("third socket: %v, want close code 4429", err)
		}
	}
	c1.subscribe("1", `subscription { postCreated { id } }`, nil)
	c1.subscribe("2", `subscription { postDeleted }`, nil)
	awaitCreatedAndDeleted(t, c1, s, tok.Access) // subscribe messages run concurrently: 1 and 2 take their places first
	c1.subscribe("3", `subscription { postDeleted }`, nil)
	m, err := c1.read(2 * time.Second)
	if err != nil || m.ID != "3" || !strings.Contains(string(m.Payload), `"code":"LIMIT_EXCEEDED"`) {
		t.Errorf("third subscription: %v %s %s, want LIMIT_EXCEEDED", err, m.Type, m.Payload)
	}
}

// Sockets fail closed: an instance that can neither trust its memory (its
// revocation bus is down) nor ask Redis closes its open sockets with 1013
// (try again later) instead of keeping them open unchecked.
func TestSocketsCloseWhenRevocationStateIsUnknown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if e.redis.Config.URL == "" {
		t.Skip("the proxy stands in front of a single Redis node only")
	}
	a := e.start(t)
	proxy := cachetest.NewProxy(t, e.redis.Config.URL)
	b := e.startWithRedis(t, rdb.Config{URL: proxy.URL})
	waitSynced(t, a, b)
	tok := a.register(t, "ivy@example.com", "plum-tree-42", "Ivy")
	c, ack, err := dialWS(t, b, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, ack)
	}
	c.subscribe("1", `subscription { postCreated { id } }`, nil)
	proxy.Cut()
	if got, want := c.closedWith(5*time.Second), websocket.StatusCode(1013); got != want {
		t.Errorf("close code=%d, want %d", got, want)
	}
}

// Every event a subscriber receives is charged to their API budget by the
// subscription's complexity, before it is resolved. When the budget runs
// out the subscription ends with RATE_LIMITED (an error message, with
// retryAfter): a write fanned out to many costly subscriptions costs each
// subscriber what their queries would.
func TestSubscriptionEventsCharged(t *testing.T) {
	t.Parallel()
	// postCreated 1 + id 1 + author (1 + posts (1 + 100 × (edges 1 + node 1 + id 1 + title 1))) = 404.
	const (
		sub        = `subscription { postCreated { id author { posts(first: 100) { edges { node { id title } } } } } }`
		complexity = 404
	)
	e := newTestEnv(t)
	e.env["APP_RATE_API"] = fmt.Sprintf("%d/1h", 2*complexity) // the subscription and one event
	s := e.start(t)
	reader := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	writer := s.register(t, "writer@example.com", "plum-tree-42", "Writer")
	c, ack, err := dialWS(t, s, reader.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	c.subscribe("1", sub, nil)
	msgs := make(chan wsMsg, 16)
	go func() {
		defer close(msgs)
		for {
			m, err := c.read(20 * time.Second)
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	next := func(within time.Duration) wsMsg {
		t.Helper()
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("socket closed")
			}
			return m
		case <-time.After(within):
			t.Fatalf("no message within %v", within)
		}
		return wsMsg{}
	}

	// Posts until the subscription, registered asynchronously, gets one.
	var first wsMsg
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		s.createPost(t, writer.Access, "post", "body")
		select {
		case first = <-msgs:
			break wait
		case <-tick.C:
		case <-deadline:
			t.Fatal("no event within 5s")
		}
	}
	var ev struct {
		Data       map[string]any `json:"data"`
		Extensions struct {
			Cost struct{ Complexity int } `json:"cost"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(first.Payload, &ev); err != nil || first.Type != "next" || ev.Data["postCreated"] == nil {
		t.Fatalf("first event: %s %s (%v)", first.Type, first.Payload, err)
	}
	if got := ev.Extensions.Cost.Complexity; got != complexity {
		t.Fatalf("the subscription's complexity is %d, not %d: fix the test's budget", got, complexity)
	}

	// The next event finds the budget spent: the subscription ends.
	s.createPost(t, writer.Access, "post", "body")
	m := next(5 * time.Second)
	var errs []gqlError
	_ = json.Unmarshal(m.Payload, &errs)
	if m.ID != "1" || m.Type != "error" || len(errs) != 1 {
		t.Fatalf("after the budget: %s %s %s, want one error ending subscription 1", m.ID, m.Type, m.Payload)
	}
	if got, want := errs[0].Extensions["code"], "RATE_LIMITED"; got != want {
		t.Errorf("code=%v, want %v", got, want)
	}
	if ra, _ := errs[0].Extensions["retryAfter"].(float64); ra < 1 {
		t.Errorf("retryAfter=%v, want ≥ 1", errs[0].Extensions["retryAfter"])
	}
}
