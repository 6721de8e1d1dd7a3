package main

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// waitSynced waits until every instance trusts its revocation set.
func waitSynced(t *testing.T, servers ...*testServer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range servers {
		for !s.app.sessions.Synced() {
			if time.Now().After(deadline) {
				t.Fatal("revocations never synced")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// authCostOf returns the Redis round trips spent authenticating a request.
func authCostOf(r gqlResponse) float64 {
	cost, _ := r.Extensions["cost"].(map[string]any)
	n, _ := cost["authRedisRoundTrips"].(float64)
	return n
}

// A logout on instance A is refused on instance B within 100 ms, while B
// authenticates from memory (no Redis round trip per request).
func TestRevocationReachesOtherInstanceFromMemory(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	waitSynced(t, a, b)
	tok := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	r := b.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	if got := authCostOf(r); got != 0 {
		t.Errorf("synced instance spent %v Redis round trips authenticating, want 0", got)
	}
	a.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
	start := time.Now()
	refusedWithin(t, b, tok.Access, 100*time.Millisecond)
	t.Logf("revocation reached instance B after %v", time.Since(start))
	r = b.do(t, tok.Access, `{ me { id } }`, nil)
	if got := authCostOf(r); got != 0 {
		t.Errorf("refused with %v Redis round trips, want 0 (from memory)", got)
	}
}

// With B's connection to Redis cut, B cannot know what it missed: it falls
// back to asking Redis per request, and still refuses a token revoked
// meanwhile. When the subscription is back, B replays the log and answers
// from memory again.
func TestRevocationFallbackWhenSubscriptionCut(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if e.redis.Config.URL == "" {
		t.Skip("the TCP cut needs a single Redis node; cluster nodes advertise their own addresses")
	}
	a := e.start(t)
	proxy := newTCPProxy(t, e.redis.Config.URL)
	b := e.startWithRedis(t, rdb.Config{URL: proxy.url})
	waitSynced(t, a, b)
	ann := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	bob := a.register(t, "bob@example.com", "plum-tree-42", "Bob")
	b.do(t, ann.Access, `{ me { id } }`, nil).mustOK(t)

	// Cut every connection of B (its subscription included) and refuse new
	// ones while A revokes.
	proxy.pause()
	deadline := time.Now().Add(2 * time.Second)
	for b.app.sessions.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("B did not notice its subscription was cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.do(t, ann.Access, `mutation { logout }`, nil).mustOK(t)
	// B cannot reach Redis at all: it refuses rather than trusting memory.
	if got, want := b.do(t, bob.Access, `{ me { id } }`, nil).code(t), "SERVICE_UNAVAILABLE"; got != want {
		t.Errorf("B with Redis unreachable: code=%q, want %q", got, want)
	}
	// Connections work again, but before B is resynced it checks Redis per
	// request, and so refuses the token revoked while it was cut off.
	proxy.resume()
	r := b.do(t, ann.Access, `{ me { id } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("B after the cut: code=%q, want %q", got, want)
	}
	// Once resynced (log replayed), B refuses it from memory.
	waitSynced(t, b)
	r = b.do(t, ann.Access, `{ me { id } }`, nil)
	if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("B resynced: code=%q, want %q", got, want)
	}
	if got := authCostOf(r); got != 0 {
		t.Errorf("B resynced spent %v Redis round trips authenticating, want 0", got)
	}
	b.do(t, bob.Access, `{ me { id } }`, nil).mustOK(t)
}

// startWithRedis starts an instance whose Redis client uses cfg.
func (e *testEnv) startWithRedis(t *testing.T, cfg rdb.Config) *testServer {
	t.Helper()
	saved := e.redis.Config
	e.redis.Config = cfg
	defer func() { e.redis.Config = saved }()
	return e.start(t)
}

// tcpProxy forwards to a Redis and can cut every connection through it.
type tcpProxy struct {
	ln     net.Listener
	target string
	url    string

	mu     sync.Mutex
	paused bool
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, redisURL string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: u.Host}
	pu := *u
	pu.Host = ln.Addr().String()
	p.url = pu.String()
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.pause() })
	_ = cachetest.External
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// pause closes every connection and refuses new ones.
func (p *tcpProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}
