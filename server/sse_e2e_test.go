package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// The subscription tests of subscriptions_e2e_test.go, over Server-Sent
// Events (graphql-sse, distinct connections mode): one POST /query with
// Accept: text/event-stream per subscription.

// sseEvent is one event of a stream: "next" with a GraphQL response, or
// "complete".
type sseEvent struct {
	Event string
	Data  string
}

// response decodes a "next" event's data.
func (e sseEvent) response(t *testing.T) gqlResponse {
	t.Helper()
	r := gqlResponse{Status: http.StatusOK} // of the stream
	if e.Event != "next" || json.Unmarshal([]byte(e.Data), &r) != nil {
		t.Fatalf("want a next event with a GraphQL response, got %q %s", e.Event, e.Data)
	}
	return r
}

// sseStream is an open event stream.
type sseStream struct {
	t      *testing.T
	res    *http.Response
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
}

// openSSE POSTs an operation asking for an event stream. A refused
// request (any status but 200) comes back as its decoded JSON body and a
// nil stream.
func openSSE(t *testing.T, s *testServer, token, query string, vars map[string]any) (*sseStream, gqlResponse) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("POST /query (event stream): %v", err)
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		out := gqlResponse{Status: res.StatusCode, Header: res.Header}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("refusal (status %d) is not JSON: %v", res.StatusCode, err)
		}
		return nil, out
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type=%q, want text/event-stream", ct)
	}
	st := &sseStream{t: t, res: res, events: make(chan sseEvent, 64), cancel: cancel}
	go st.read()
	return st, gqlResponse{Status: res.StatusCode, Header: res.Header}
}

// read parses the stream (the text/event-stream format: "field: value"
// lines, a blank line ends an event, lines starting with ":" are
// comments).
func (s *sseStream) read() {
	defer close(s.events)
	defer s.res.Body.Close()
	sc := bufio.NewScanner(s.res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Event != "" || ev.Data != "" {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.Event = value
			case "data":
				if ev.Data != "" {
					ev.Data += "\n"
				}
				ev.Data += value
			}
		}
	}
}

// next waits for the next event; ok is false if the stream ended first.
func (s *sseStream) next(within time.Duration) (sseEvent, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(within):
		s.t.Fatalf("no event within %v", within)
	}
	return sseEvent{}, false
}

// data waits for a "next" event without errors and returns its data.
func (s *sseStream) data() gqlResponse {
	s.t.Helper()
	ev, ok := s.next(5 * time.Second)
	if !ok {
		s.t.Fatal("stream ended, want an event")
	}
	return ev.response(s.t).mustOK(s.t)
}

// ends waits for the stream's last events: an error (its code returned,
// "" for none) and "complete", then the end of the response.
func (s *sseStream) ends(within time.Duration) (code, reason string) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	ev, ok := s.next(time.Until(deadline))
	if ok && ev.Event == "next" {
		r := ev.response(s.t)
		code = r.code(s.t)
		reason, _ = r.Errors[0].Extensions["reason"].(string)
		ev, ok = s.next(time.Until(deadline))
	}
	if !ok || ev.Event != "complete" {
		s.t.Fatalf("want a complete event, got %+v (open %v)", ev, ok)
	}
	if _, ok := s.next(time.Until(deadline)); ok {
		s.t.Fatal("events after complete")
	}
	return code, reason
}

// awaitLiveSSE makes probe writes until the stream receives one's event
// (the subscription registers after the response has started), and reads
// until the last probe's event has arrived: marker is in its data.
func awaitLiveSSE(t *testing.T, st *sseStream, probe func() (marker string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the subscription got no event of probes made for 10s")
		}
		marker := probe()
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatal("stream ended while waiting for it to go live")
			}
			for !strings.Contains(ev.response(t).mustOK(t).Raw(t), marker) {
				ev = sseMust(st.next(5 * time.Second))
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sseMust(ev sseEvent, ok bool) sseEvent {
	if !ok {
		return sseEvent{Event: "(end)"}
	}
	return ev
}

// Raw is the response's data as JSON.
func (r gqlResponse) Raw(t *testing.T) string {
	t.Helper()
	b, _ := json.Marshal(r.Data)
	return string(b)
}

// A post created through instance B reaches an event stream on instance
// A; updates are filtered by id; deletions carry ids.
func TestSSESubscriptionsFanOutAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	tok := b.register(t, "ann@example.com", "plum-tree-42", "Ann")

	created, _ := openSSE(t, a, tok.Access, `subscription { postCreated { id title author { name } } }`, nil)
	awaitLiveSSE(t, created, func() string { return b.createPost(t, tok.Access, "probe", "live yet?") })
	id := b.createPost(t, tok.Access, "hello", "world")
	r := created.data()
	if got := r.str("postCreated.id"); got != id {
		t.Errorf("postCreated.id=%v, want %v", got, id)
	}
	if got := r.str("postCreated.author.name"); got != "Ann" {
		t.Errorf("postCreated.author.name=%v, want Ann", got)
	}

	updated, _ := openSSE(t, a, tok.Access, `subscription($id: ID!) { postUpdated(id: $id) { title } }`, map[string]any{"id": id})
	probes := 0
	awaitLiveSSE(t, updated, func() string {
		probes++
		title := fmt.Sprintf("probe %d", probes)
		b.do(t, tok.Access, `mutation($id: ID!, $t: String!) { updatePost(id: $id, input: {title: $t}) { id } }`, map[string]any{"id": id, "t": title}).mustOK(t)
		return title
	})
	other := b.createPost(t, tok.Access, "other", "x")
	b.do(t, tok.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "edited"}) { id } }`, map[string]any{"id": other}).mustOK(t)
	b.do(t, tok.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "changed"}) { id } }`, map[string]any{"id": id}).mustOK(t)
	if got := updated.data().str("postUpdated.title"); got != "changed" {
		t.Errorf("postUpdated.title=%v, want changed (the other post's update is filtered out)", got)
	}

	deleted, _ := openSSE(t, a, tok.Access, `subscription { postDeleted }`, nil)
	awaitLiveSSE(t, deleted, func() string {
		id := b.createPost(t, tok.Access, "probe", "live yet?")
		b.do(t, tok.Access, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
		return id
	})
	b.do(t, tok.Access, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
	if got := deleted.data().get("postDeleted"); got != id {
		t.Errorf("postDeleted=%v, want %v", got, id)
	}
}

// A stream is authenticated before it starts: without a usable access
// token it is refused with 401 and a coded JSON body, as graphql-sse
// clients expect of a refused stream.
func TestSSESubscriptionsNeedAuthentication(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	for name, tc := range map[string]struct{ token, reason string }{
		"no token":  {"", "NO_TOKEN"},
		"bad token": {"not-a-token", "INVALID_TOKEN"},
	} {
		t.Run(name, func(t *testing.T) {
			st, r := openSSE(t, s, tc.token, `subscription { postCreated { id } }`, nil)
			if st != nil {
				t.Fatal("stream opened")
			}
			if got, want := r.Status, http.StatusUnauthorized; got != want {
				t.Errorf("status=%d, want %d", got, want)
			}
			if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
				t.Errorf("code=%v, want %v", got, want)
			}
			if got := r.Errors[0].Extensions["reason"]; got != tc.reason {
				t.Errorf("reason=%v, want %v", got, tc.reason)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate=%q, want Bearer", got)
			}
		})
	}
}

// Revocation reaches event streams as it reaches sockets: a logout served
// by another instance ends the stream within a second (a last error,
// SESSION_ENDED, then complete); an expired token ends it with
// TOKEN_EXPIRED.
func TestSSEStreamEndsWithSession(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	tok := b.register(t, "ann@example.com", "plum-tree-42", "Ann")
	st, _ := openSSE(t, a, tok.Access, `subscription { postCreated { id } }`, nil)
	awaitLiveSSE(t, st, func() string { return b.createPost(t, tok.Access, "probe", "live yet?") })
	start := time.Now()
	b.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
	if code, reason := st.ends(time.Second); code != "UNAUTHENTICATED" || reason != "SESSION_ENDED" {
		t.Errorf("after logout on the other instance: %s %s, want UNAUTHENTICATED SESSION_ENDED", code, reason)
	}
	t.Logf("stream ended %v after the logout", time.Since(start))

	tok2 := b.login(t, "ann@example.com", "plum-tree-42")
	st2, _ := openSSE(t, a, tok2.Access, `subscription { postCreated { id } }`, nil)
	awaitLiveSSE(t, st2, func() string { return b.createPost(t, tok2.Access, "probe", "live yet?") })
	e.clock.Advance(16 * time.Minute)
	if code, reason := st2.ends(time.Second); code != "UNAUTHENTICATED" || reason != "TOKEN_EXPIRED" {
		t.Errorf("after the token expired: %s %s, want UNAUTHENTICATED TOKEN_EXPIRED", code, reason)
	}
}

// Streams count against the per-user cap on live connections with
// sockets; a subscription too complex is refused before its stream starts.
func TestSSELimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_WS_MAX_CONNECTIONS_PER_USER"] = "2"
	e.env["APP_COMPLEXITY_LIMIT"] = "50"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	if _, ack, _ := dialWS(t, s, tok.Access, false); ack.Type != "connection_ack" {
		t.Fatalf("socket: %+v", ack)
	}
	st, r := openSSE(t, s, tok.Access, `subscription { postCreated { id } }`, nil)
	if st == nil {
		t.Fatalf("second live connection refused: %d %+v", r.Status, r.Errors)
	}
	_, r = openSSE(t, s, tok.Access, `subscription { postDeleted }`, nil)
	if got, want := r.Status, http.StatusTooManyRequests; got != want {
		t.Errorf("third live connection: status=%d, want %d", got, want)
	}
	if got, want := r.code(t), "LIMIT_EXCEEDED"; got != want {
		t.Errorf("third live connection: code=%v, want %v", got, want)
	}
	// Once a stream ends, its place is free again.
	st.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, r := openSSE(t, s, tok.Access, `subscription { postDeleted }`, nil)
		if st != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place of a closed stream is not freed: %d %+v", r.Status, r.Errors)
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, r = openSSE(t, s, tok.Access, `subscription { postCreated { id author { posts(first: 100) { edges { node { id } } } } } }`, nil)
	if r.Status == http.StatusOK || len(r.Errors) != 1 {
		t.Fatalf("too complex a subscription: status %d errors %+v, want a refusal", r.Status, r.Errors)
	}
	if got, want := r.code(t), "COMPLEXITY_LIMIT_EXCEEDED"; got != want {
		t.Errorf("code=%v, want %v", got, want)
	}
}

// Every event of a stream is charged as on a socket: when the budget runs
// out the stream ends with a last RATE_LIMITED error (with retryAfter).
func TestSSEEventsCharged(t *testing.T) {
	t.Parallel()
	const (
		sub        = `subscription { postCreated { id author { posts(first: 100) { edges { node { id title } } } } } }`
		complexity = 404 // as in TestSubscriptionEventsCharged
	)
	e := newTestEnv(t)
	e.env["APP_RATE_API"] = fmt.Sprintf("%d/1h", 2*complexity) // the subscription and one event
	s := e.start(t)
	reader := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	writer := s.register(t, "writer@example.com", "plum-tree-42", "Writer")
	st, r := openSSE(t, s, reader.Access, sub, nil)
	if st == nil {
		t.Fatalf("stream refused: %d %+v", r.Status, r.Errors)
	}
	// Posts until the subscription, live once its stream has started, gets
	// one: that first event is paid for. A probe posted meanwhile may be
	// the one that finds the budget spent; else the next post is.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no event within 10s")
		}
		s.createPost(t, writer.Access, "post", "body")
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatal("stream ended before its first event")
			}
			ev.response(t).mustOK(t)
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	s.createPost(t, writer.Access, "post", "body")
	code, _ := st.ends(5 * time.Second)
	if got, want := code, "RATE_LIMITED"; got != want {
		t.Errorf("code=%v, want %v", got, want)
	}
}

// Streams fail closed, as sockets do: an instance that can neither trust
// its memory nor ask Redis ends them with SERVICE_UNAVAILABLE.
func TestSSEStreamsEndWhenRevocationStateIsUnknown(t *testing.T) {
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
	st, r := openSSE(t, b, tok.Access, `subscription { postCreated { id } }`, nil)
	if st == nil {
		t.Fatalf("stream refused: %d %+v", r.Status, r.Errors)
	}
	proxy.Cut()
	if code, _ := st.ends(5 * time.Second); code != "SERVICE_UNAVAILABLE" {
		t.Errorf("code=%v, want SERVICE_UNAVAILABLE", code)
	}
}

// Queries and mutations travel as streams too (one "next", then
// "complete"), with the token of the Authorization header; a client that
// only lists text/event-stream among others gets plain JSON; a body that is
// not a GraphQL request is refused before any stream.
func TestSSEOtherOperationsAndRefusals(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	st, r := openSSE(t, s, tok.Access, `query { me { name } }`, nil)
	if st == nil {
		t.Fatalf("query stream refused: %d %+v", r.Status, r.Errors)
	}
	if got := st.data().str("me.name"); got != "Ann" {
		t.Errorf("me.name=%q, want Ann", got)
	}
	if code, _ := st.ends(5 * time.Second); code != "" {
		t.Errorf("query stream ended with %s", code)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control=%q, want no-store", got)
	}
	if got := r.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering=%q, want no", got)
	}

	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ me { name } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	req.Header.Set("Accept", "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed")
	if got := s.send(t, req).mustOK(t); got.str("me.name") != "Ann" || !strings.HasPrefix(got.Header.Get("Content-Type"), "application/graphql-response+json") {
		t.Errorf("urql's Accept: %s %v, want JSON", got.Header.Get("Content-Type"), got.Data)
	}

	// A documentId reaches the document lookup, as over plain POST.
	unknown := `{"documentId": "sha256:` + strings.Repeat("0", 64) + `"}`
	req, _ = http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(unknown))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	if r := s.send(t, req); r.Status != http.StatusBadRequest || r.code(t) != "PERSISTED_DOCUMENT_NOT_FOUND" {
		t.Errorf("unknown documentId: status %d errors %+v, want 400 PERSISTED_DOCUMENT_NOT_FOUND", r.Status, r.Errors)
	}

	for name, body := range map[string]string{"not JSON": `{"query":`, "query not a string": `{"query": 5}`, "no query": `{}`} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		r := s.send(t, req)
		if r.Status != http.StatusBadRequest || r.code(t) != "BAD_REQUEST" {
			t.Errorf("%s: status %d errors %+v, want 400 BAD_REQUEST", name, r.Status, r.Errors)
		}
	}
}

// A stopping instance ends its subscription streams at once, as a dropped
// connection (no "complete": graphql-sse clients reconnect elsewhere), and
// exits without waiting ShutdownTimeout for them.
func TestSSEStreamsEndOnShutdown(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	p := e.startProcess(t, map[string]string{"APP_SHUTDOWN_GRACE": "0s", "APP_SHUTDOWN_TIMEOUT": "20s"})
	s := p.server()
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	st, r := openSSE(t, s, tok.Access, `subscription { postCreated { id } }`, nil)
	if st == nil {
		t.Fatalf("stream refused: %d %+v", r.Status, r.Errors)
	}
	awaitLiveSSE(t, st, func() string { return s.createPost(t, tok.Access, "probe", "live yet?") })
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	if ev, ok := st.next(5 * time.Second); ok {
		t.Errorf("after SIGTERM: event %+v, want the stream to end without complete", ev)
	}
	if _, ok := p.wait(10 * time.Second); !ok {
		t.Fatalf("still running 10 s after SIGTERM; log:\n%s", p.logs)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("exit took %v after SIGTERM with a stream open, want well under APP_SHUTDOWN_TIMEOUT", took)
	}
}

// An event stream is a live connection of the same hub as the sockets: a
// stream and a socket with the same document share one group, whose event
// is resolved once and reaches both with the same bytes; the stream is
// counted as a live connection, and its subscription is logged when it
// starts and when it ends, with the events it delivered.
func TestSSEStreamsShareGroupsWithSockets(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_LOG_LEVEL"] = "info"
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const feed = `subscription Feed { postCreated { id title } }`
	c, ack, err := dialWS(t, s, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	c.subscribe("1", feed, nil)
	c.sync()
	st, r := openSSE(t, s, tok.Access, feed, nil)
	if st == nil {
		t.Fatalf("stream refused: %d %+v", r.Status, r.Errors)
	}
	live := &s.app.metrics.live
	for deadline := time.Now().Add(5 * time.Second); live.Subscriptions.Load() != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions=%d, want 2 (the socket's and the stream's)", live.Subscriptions.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := live.Groups.Load(); got != 1 {
		t.Errorf("groups=%d, want 1 (a socket and a stream with one document)", got)
	}
	if got := live.Sockets.Load(); got != 2 {
		t.Errorf("live connections=%d, want 2", got)
	}
	before := live.Resolutions.Load()
	s.createPost(t, tok.Access, "hello", "world")
	_, b, err := c.conn.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Payload json.RawMessage }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ev, ok := st.next(5 * time.Second)
	if !ok || ev.Event != "next" {
		t.Fatalf("stream: %+v (open %v), want the event", ev, ok)
	}
	if ev.Data != string(m.Payload) {
		t.Errorf("the stream and the socket got different events:\n%s\n%s", ev.Data, m.Payload)
	}
	if got := live.Resolutions.Load() - before; got != 1 {
		t.Errorf("event resolved %d times for one group, want 1", got)
	}

	st.cancel()
	ended := regexp.MustCompile(`msg="subscription ended".*operation=Feed type=subscription user_id=\S+ duration_ms=\S+ events=1`)
	for deadline := time.Now().Add(5 * time.Second); live.Sockets.Load() != 1 || len(ended.FindAllString(s.logs.String(), -1)) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("live connections=%d once the stream closed, want 1; log:\n%s", live.Sockets.Load(), s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(s.logs.String(), `msg="subscription started"`); n != 2 {
		t.Errorf("%d 'subscription started' lines, want 2 (socket and stream)", n)
	}
}
