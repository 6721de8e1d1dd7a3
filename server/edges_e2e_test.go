package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Every /query response says no-store: token-bearing ones (register, login,
// refresh), signed-in reads over GET, and refusals before GraphQL runs.
func TestQueryResponsesAreNotStored(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_BODY_LIMIT"] = "1000"
	s := e.start(t)
	s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	login := s.do(t, "", `mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken refreshToken } }`, nil).mustOK(t)
	ref := s.refresh(t, login.str("login.refreshToken")).mustOK(t)
	get, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+strings.ReplaceAll("{ me { id } }", " ", "%20"), nil)
	get.Header.Set("Authorization", "Bearer "+ref.str("refresh.accessToken"))
	big, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"`+strings.Repeat(" ", 2000)+`{ me { id } }"}`))
	big.Header.Set("Content-Type", "application/json")
	for name, h := range map[string]http.Header{
		"login":         login.Header,
		"refresh":       ref.Header,
		"GET query":     s.send(t, get).mustOK(t).Header,
		"413 too large": s.send(t, big).Header,
	} {
		if got, want := h.Get("Cache-Control"), "no-store"; got != want {
			t.Errorf("%s: Cache-Control=%q, want %q", name, got, want)
		}
	}
}

// boundedServer serves the real middleware around gql, with a short write
// timeout.
func boundedServer(t *testing.T, timeout time.Duration, gql http.Handler) *httptest.Server {
	t.Helper()
	e := newTestEnv(t)
	e.env["APP_WRITE_TIMEOUT"] = timeout.String()
	s := e.start(t)
	ts := httptest.NewServer(s.app.routes(gql))
	t.Cleanup(ts.Close)
	return ts
}

// A client that stops reading cannot hold a response forever: the write
// fails at the deadline and the handler returns.
func TestWriteTimeoutCutsSlowReader(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	ts := boundedServer(t, 300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range 1 << 10 { // 1 GiB: far more than any socket buffer
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}))
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	// The client never reads.
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the handler wrote 1 GiB to a client that reads nothing")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handler is still writing to a client that reads nothing 15s after a 300ms deadline")
	}
}

// A handler that never answers is given up on: its context ends before the
// deadline, and the client gets an answer or a closed connection.
func TestWriteTimeoutEndsSlowHandler(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	ts := boundedServer(t, 300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			done <- r.Context().Err()
		case <-time.After(time.Minute):
			done <- errors.New("not ended after a minute")
		}
	}))
	answered := make(chan error, 1)
	go func() {
		res, err := http.Post(ts.URL+"/query", "application/json", strings.NewReader("{}"))
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler context ended with %v, want the deadline", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handler's context did not end 15s after a 300ms deadline")
	}
	select {
	case <-answered:
	case <-time.After(15 * time.Second):
		t.Fatal("the client is still waiting 15s after a 300ms deadline")
	}
}

// A WebSocket is not a response: it lives past the write timeout and still
// delivers events.
func TestWebSocketOutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// Sign-up and the post go through an instance with the default
	// deadline: under a loaded -race run they may take longer than 200 ms.
	other := e.start(t)
	tok := other.register(t, "ann@example.com", "plum-tree-42", "Ann")
	e.env["APP_WRITE_TIMEOUT"] = "200ms"
	e.env["APP_WS_PING_INTERVAL"] = "50ms"
	s := e.start(t)
	c, ack, err := dialWS(t, s, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, ack)
	}
	c.subscribe("1", `subscription { postCreated { title } }`, nil)
	// Keep-alives until three timeouts have passed.
	for start := time.Now(); time.Since(start) < 600*time.Millisecond; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("socket closed after %v: %v", time.Since(start), err)
		}
		c.send(wsMsg{Type: "pong"})
	}
	other.createPost(t, tok.Access, "late", "still here")
	if got := c.next("1"); fmt.Sprint(got) != "map[postCreated:map[title:late]]" {
		t.Errorf("event=%v", got)
	}
}

// dialRaw opens a socket and sends nothing.
func dialRaw(t *testing.T, s *testServer) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return dialRawWith(t, s, nil)
}

// dialRawWith is dialRaw sending the request headers h.
func dialRawWith(t *testing.T, s *testServer, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, res, err
}

// Sockets that have not sent connection_init are capped per client address:
// the next is refused with 429 before the upgrade; a socket that
// authenticates, or ends, frees its place.
func TestUnauthenticatedSocketsCappedPerAddress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_WS_MAX_UNAUTHENTICATED_PER_IP"] = "2"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	first, _, err := dialRaw(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dialRaw(t, s); err != nil {
		t.Fatal(err)
	}
	_, res, err := dialRaw(t, s)
	if err == nil {
		t.Fatal("a third socket without connection_init was accepted")
	}
	if res == nil || res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "10" {
		t.Fatalf("third socket: err=%v response=%+v, want 429 with Retry-After: 10", err, res)
	}
	// One authenticates: a place frees at once.
	c := &wsClient{t: t, conn: first}
	c.send(wsMsg{Type: "connection_init", Payload: mustJSON(map[string]any{"Authorization": "Bearer " + tok.Access})})
	if m, err := c.read(5 * time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, m)
	}
	third, _, err := dialRaw(t, s)
	if err != nil {
		t.Fatalf("after one socket authenticated: %v", err)
	}
	// One ends without authenticating: its place frees once the server sees it.
	third.CloseNow()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, _, err := dialRaw(t, s); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed unauthenticated socket still counts after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The cap counts an IPv6 client by its prefix, as the per-address rate
// limits do (APP_RATE_IPV6_PREFIX): the holder of a /64 cannot open
// unauthenticated sockets from one address of it after another.
func TestUnauthenticatedSocketsCappedPerIPv6Prefix(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_WS_MAX_UNAUTHENTICATED_PER_IP"] = "2"
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1"
	s := e.start(t)
	dial := func(from string) (*http.Response, error) {
		_, res, err := dialRawWith(t, s, http.Header{"X-Forwarded-For": {from}})
		return res, err
	}
	for _, from := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if _, err := dial(from); err != nil {
			t.Fatalf("socket from %s: %v", from, err)
		}
	}
	res, err := dial("2001:db8:1:2::3")
	if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third socket from the same /64: err=%v response=%+v, want 429", err, res)
	}
	for _, from := range []string{"2001:db8:1:3::1", "192.0.2.1", "192.0.2.2"} {
		if _, err := dial(from); err != nil {
			t.Errorf("socket from %s (another client): %v", from, err)
		}
	}
}
