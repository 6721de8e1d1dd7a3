package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/entdb/outbox"
)

// deliveryBound is docs/OPERATIONS.md's bound on how long after Redis answers
// again a write's invalidation and event are delivered (the outbox's
// longest backoff plus its poll), with room for a loaded machine.
const deliveryBound = 2 * (outbox.MaxBackoff + time.Second)

// startHooked starts an instance whose Redis client uses cfg and whose
// writes of posts and users run the function in hook, once, just before
// they commit (after their first cache invalidation).
func (e *testEnv) startHooked(t *testing.T, cfg rdb.Config, hook *atomic.Pointer[func()]) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(requestIDHandler{slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})})
	a, err := newApp(context.Background(), e.config(t), log, deps{
		now: e.clock.Now,
		rdb: cachetest.Open(t, cfg),
		beforeCommit: func(context.Context) {
			if f := hook.Swap(nil); f != nil {
				(*f)()
			}
		},
	})
	if err != nil {
		t.Fatalf("start instance: %v", err)
	}
	ts := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return &testServer{Server: ts, app: a, logs: logs}
}

// titles is the first page of the post list as s answers it (from its
// cache tiers when it can); nil if s could not answer.
func titles(t *testing.T, s *testServer, token string) []string {
	t.Helper()
	r := s.do(t, token, `{ posts { totalCount edges { node { title } } } }`, nil)
	if len(r.Errors) > 0 {
		return nil
	}
	var out []string
	for _, e := range r.get("posts.edges").([]any) {
		out = append(out, e.(map[string]any)["node"].(map[string]any)["title"].(string))
	}
	return out
}

// waitTitle waits until s lists title.
func waitTitle(t *testing.T, s *testServer, token, title string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		got := titles(t, s, token)
		if slices.Contains(got, title) {
			return
		}
		if time.Since(start) > within {
			t.Fatalf("after %v the list is still %v, without %q (served from a page cached before the write)", within, got, title)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis dies between a write's commit and the bump after it, keeping its
// data (a reader cached the list, without the write, under the generation
// the write's first bump made). The write is acknowledged: it committed.
// Once Redis is back, another instance lists the write within the
// bound of docs/OPERATIONS.md: the bump was recorded in the write's
// transaction and the outbox delivers it.
func TestListFreshAfterRedisLostBetweenCommitAndBump(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	e := newTestEnvOn(t, rdb.Config{URL: srv.URL})
	e.env["APP_RATE_API"] = "off" // B is asked often
	var hook atomic.Pointer[func()]
	a, b := e.startHooked(t, e.redis.Config, &hook), e.start(t)
	waitSynced(t, a, b)
	tok := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	a.createPost(t, tok.Access, "first", "body")
	if got := titles(t, b, tok.Access); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("B lists %v, want [first]", got)
	}
	kill := func() {
		if got := titles(t, b, tok.Access); !slices.Equal(got, []string{"first"}) {
			t.Errorf("B, reading before the commit, lists %v, want [first]", got)
		}
		srv.Snapshot(context.Background()) // restarted, Redis has what it had
		srv.Stop()
	}
	hook.Store(&kill)
	a.createPost(t, tok.Access, "second", "body")
	if hook.Load() != nil {
		t.Fatal("the write never reached its commit")
	}

	restart := time.Now()
	srv.Start()
	waitTitle(t, b, tok.Access, "second", deliveryBound)
	t.Logf("B listed the write %v after Redis was restarted", time.Since(restart))
}

// The writing instance loses Redis between its commit and the delivery,
// and dies. Another instance delivers what it left: its list shows the
// write, and its subscriber gets the event.
func TestOtherInstanceDeliversWhatAWriterLeft(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if e.redis.Config.URL == "" {
		t.Skip("a proxy needs a single Redis")
	}
	e.env["APP_RATE_API"] = "off"
	proxy := cachetest.NewProxy(t, e.redis.Config.URL)
	var hook atomic.Pointer[func()]
	a, b := e.startHooked(t, rdb.Config{URL: proxy.URL}, &hook), e.start(t)
	waitSynced(t, a, b)
	tok := b.register(t, "ann@example.com", "plum-tree-42", "Ann")
	ws, ack, err := dialWS(t, b, tok.Access, false)
	if err != nil || ack.Type != "connection_ack" {
		t.Fatalf("init: %v %+v", err, ack)
	}
	ws.subscribe("1", `subscription { postCreated { title } }`, nil)
	// Posts until the subscription is live (its first event).
	live := make(chan struct{})
	go func() {
		for {
			b.do(t, tok.Access, `mutation { createPost(input: {title: "first", content: "body"}) { id } }`, nil)
			select {
			case <-live:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	_, err = ws.read(10 * time.Second)
	close(live)
	if err != nil {
		t.Fatalf("the subscription never received an event: %v", err)
	}
	if got := titles(t, b, tok.Access); len(got) == 0 || got[0] != "first" {
		t.Fatalf("B lists %v", got)
	}
	cut := func() {
		titles(t, b, tok.Access) // cached without the write
		proxy.Cut()
	}
	hook.Store(&cut)
	a.createPost(t, tok.Access, "second", "body")
	a.app.Close() // and A dies

	start := time.Now()
	for {
		m, err := ws.read(deliveryBound)
		if err != nil {
			t.Fatalf("no event of the write on B within %v: %v", deliveryBound, err)
		}
		if m.ID == "1" && strings.Contains(string(m.Payload), `"second"`) {
			break
		}
	}
	t.Logf("B's subscriber got the write's event %v after A died", time.Since(start))
	waitTitle(t, b, tok.Access, "second", deliveryBound)
}
