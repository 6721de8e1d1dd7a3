package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// An idle instance given SIGTERM (APP_SHUTDOWN_GRACE=0) exits at once, and
// says nothing above INFO on the way: a clean shutdown is not a warning.
// Another instance runs beside it (the bus has a peer to acknowledge).
func TestIdleShutdownIsPromptAndQuiet(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	peer := e.startProcess(t, nil)
	p := e.startProcess(t, map[string]string{"APP_SHUTDOWN_GRACE": "0s"})
	s := p.server()
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, tok.Access, "hello", "body")
	peer.server().do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	p.waitReady(t, t.Context())
	// Idle on purpose, longer than a period of every background loop (bus
	// pings; the heartbeat, the session-use flush and the outbox poll each
	// second): SIGTERM finds them running, not freshly started.
	time.Sleep(1500 * time.Millisecond)

	start := time.Now()
	before := len(p.logs.String())
	p.signal(t, syscall.SIGTERM)
	err, ok := p.wait(10 * time.Second)
	if !ok {
		t.Fatalf("still running 10 s after SIGTERM; log:\n%s", p.logs)
	}
	if err != nil {
		t.Errorf("exit: %v", err)
	}
	took := time.Since(start)
	t.Logf("exited %v after SIGTERM", took)
	if took > time.Second {
		t.Errorf("exit took %v after SIGTERM, want at most 1 s", took)
	}
	for _, line := range strings.Split(p.logs.String()[before:], "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("shutdown logged: %s", line)
		}
	}
}

// An instance given SIGTERM while its Redis hangs (SIGSTOP) still exits
// at once: its last Redis work (leaving the bus's instance set, the last
// second's session uses) has a bound of its own.
func TestShutdownWithRedisHungIsPrompt(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	e := newTestEnvOn(t, rdb.Config{URL: srv.URL})
	p := e.startProcess(t, map[string]string{"APP_SHUTDOWN_GRACE": "0s"})
	s := p.server()
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)

	srv.Pause()
	t.Cleanup(srv.Resume)
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	err, ok := p.wait(10 * time.Second)
	if !ok {
		t.Fatalf("still running 10 s after SIGTERM; log:\n%s", p.logs)
	}
	if err != nil {
		t.Errorf("exit: %v", err)
	}
	took := time.Since(start)
	t.Logf("exited %v after SIGTERM", took)
	if took > time.Second {
		t.Errorf("exit took %v after SIGTERM with Redis hung, want at most 1 s", took)
	}
}
