package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/graph"
)

// untouched is a database path and a Redis that a refused start must leave
// alone: the directory of the SQLite file must not be created, and the
// Redis must see no connection.
type untouched struct {
	dir   string
	redis *miniredis.Miniredis
}

func newUntouched(t *testing.T) untouched {
	t.Helper()
	return untouched{dir: filepath.Join(t.TempDir(), "db"), redis: miniredis.RunT(t)}
}

// env is a development configuration on them.
func (u untouched) env() map[string]string {
	return map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(u.dir, "app.db"),
		"REDIS_URL": "redis://" + u.redis.Addr(), "APP_ADDR": "127.0.0.1:0"}
}

func (u untouched) check(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(u.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the database directory exists (stat: %v)", err)
	}
	if n := u.redis.TotalConnectionCount(); n != 0 {
		t.Errorf("Redis saw %d connections, want 0", n)
	}
}

// runBriefly runs the program with env, for a start that must fail: if it
// starts instead, it is stopped after a while (and returns nil).
func runBriefly(t *testing.T, env map[string]string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return runWith(ctx, nil, env, io.Discard, io.Discard)
}

// A configuration that is refused leaves no trace: no database file or
// directory, no Redis connection. An out-of-range port used to be noticed
// only by net.Listen, after both had been opened.
func TestRunRefusedConfigTouchesNothing(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"APP_ADDR", ":99999"},
		{"APP_METRICS_ADDR", "127.0.0.1:99999"},
		{"APP_LOG_LEVEL", "verbose"},
		{"APP_CORS_ORIGINS", "https://app.example.com/"},
		{"APP_WS_PING_INTERVAL", "-25s"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			u := newUntouched(t)
			env := u.env()
			env[tc.env] = tc.value
			err := runBriefly(t, env)
			if err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("run with %s=%s: err=%v, want a refusal naming %s", tc.env, tc.value, err, tc.env)
			}
			u.check(t)
		})
	}
}

// The ports are taken before anything is opened: a port in use fails the
// start with nothing created and no connection made.
func TestRunPortInUseTouchesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	for _, name := range []string{"APP_ADDR", "APP_METRICS_ADDR"} {
		t.Run(name, func(t *testing.T) {
			u := newUntouched(t)
			env := u.env()
			env[name] = taken.Addr().String()
			err := runBriefly(t, env)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "in use") {
				t.Fatalf("run with %s on a taken port: err=%v", name, err)
			}
			u.check(t)
		})
	}
}

// closedAddr is a loopback address nobody listens on (yet).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitUntil polls cond until it holds, failing after 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 30s", what)
		}
	}
}

// startingEnv is a production configuration on the database dsn and the
// Redis at redisAddr.
func startingEnv(dsn, redisAddr string) map[string]string {
	return map[string]string{
		"APP_ENV": "production", "APP_ADDR": "127.0.0.1:0", "APP_METRICS_ADDR": "127.0.0.1:0",
		"DATABASE_URL": dsn, "REDIS_URL": "redis://" + redisAddr, "APP_JWT_SECRET": strongSecret, "APP_ENCRYPTION_KEY": strongSecret,
		"APP_REQUIRE_HTTPS": "false", "APP_SHUTDOWN_GRACE": "0s", "APP_LOG_FORMAT": "text",
		// Nothing listens: mail is retried in the background, unseen.
		"APP_SMTP_URL": "smtp://127.0.0.1:1?tls=none", "APP_PUBLIC_URL": "https://app.example.com",
		// These tests sign up and use the tokens at once.
		"APP_REQUIRE_VERIFIED_EMAIL": "false",
	}
}

// checkStarting checks what the listener answers while the start waits:
// alive, not ready, and a coded 503 on the API.
func checkStarting(t *testing.T, base string) {
	t.Helper()
	if got, want := getStatus(t, base+"/healthz"), http.StatusOK; got != want {
		t.Errorf("/healthz while starting: %d, want %d", got, want)
	}
	if got, want := getStatus(t, base+"/readyz"), http.StatusServiceUnavailable; got != want {
		t.Errorf("/readyz while starting: %d, want %d", got, want)
	}
	s := &testServer{Server: &httptest.Server{URL: base}, hc: http.DefaultClient}
	r := s.do(t, "", `{ posts(first: 1) { totalCount } }`, nil)
	if got, want := r.Status, http.StatusServiceUnavailable; got != want {
		t.Errorf("/query while starting: status %d, want %d", got, want)
	}
	if got, want := r.code(t), graph.CodeServiceUnavailable; got != want {
		t.Errorf("/query while starting: code %s, want %s", got, want)
	}
	if got, want := r.Header.Get("Retry-After"), "1"; got != want {
		t.Errorf("/query while starting: Retry-After %q, want %q", got, want)
	}
}

// Redis is not up when the server starts (an orchestrator started both at
// once): the server listens, says it is alive and not ready, answers the
// API with a coded 503, retries, and serves once Redis answers. It used to
// exit at once. Redis is miniredis, then a real redis-server.
func TestRunWaitsForRedis(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		addr := closedAddr(t)
		waitForRedis(t, addr, func() {
			m := miniredis.NewMiniRedis()
			if err := m.StartAddr(addr); err != nil {
				t.Fatalf("start Redis on %s: %v", addr, err)
			}
			t.Cleanup(m.Close)
		})
	})
	t.Run("redis-server", func(t *testing.T) {
		r := cachetest.StartServer(t)
		r.Stop()
		u, err := url.Parse(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		waitForRedis(t, u.Host, r.Start)
	})
}

// waitForRedis starts the server on the Redis at addr, which is down,
// checks that it waits, brings Redis up and checks that it serves.
func waitForRedis(t *testing.T, addr string, up func()) {
	t.Helper()
	s := launch(t, startingEnv(entdbtest.DSN(t), addr))
	s.base = "http://" + s.waitLog(t, "listening")
	waitUntil(t, "retrying Redis", func() bool { return strings.Contains(s.logs.String(), "redis not reachable yet") })
	checkStarting(t, s.base)
	up()
	waitReadyz(t, s.base)
	checkServes(t, s.base)
}

// checkServes signs up and asks who we are.
func checkServes(t *testing.T, base string) {
	t.Helper()
	s := &testServer{Server: &httptest.Server{URL: base}, hc: http.DefaultClient}
	tok := s.register(t, "late@example.com", "plum-tree-42", "Late")
	r := s.do(t, tok.Access, `{ me { email } }`, nil).mustOK(t)
	if got, want := r.str("me.email"), "late@example.com"; got != want {
		t.Errorf("me.email=%q, want %q", got, want)
	}
}

// PostgreSQL is not up when the server starts: it waits for it as for
// Redis. (A SQLite file is never down: the test needs DATABASE_URL.)
func TestRunWaitsForPostgres(t *testing.T) {
	dsn := entdbtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Skip("needs DATABASE_URL=postgres://...")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	addr := closedAddr(t)
	u.Host = addr
	s := launch(t, startingEnv(u.String(), miniredis.RunT(t).Addr()))
	s.base = "http://" + s.waitLog(t, "listening")
	waitUntil(t, "retrying the database", func() bool { return strings.Contains(s.logs.String(), "database not reachable yet") })
	checkStarting(t, s.base)

	forward(t, addr, target)
	waitReadyz(t, s.base)
	checkServes(t, s.base)
}

// forward listens on addr from now on and forwards each connection to
// target, until the test ends.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// A database that does not come up within APP_STARTUP_TIMEOUT ends the
// start with an error that says so, after the bound and not before; the
// listener says not ready meanwhile.
func TestRunGivesUpOnDatabaseAfterStartupTimeout(t *testing.T) {
	const bound = 2 * time.Second
	env := startingEnv("postgres://postgres@"+closedAddr(t)+"/authql?sslmode=disable", miniredis.RunT(t).Addr())
	env["APP_STARTUP_TIMEOUT"] = bound.String()
	start := time.Now()
	s := launch(t, env)
	s.base = "http://" + s.waitLog(t, "listening")
	waitUntil(t, "retrying the database", func() bool { return strings.Contains(s.logs.String(), "database not reachable yet") })
	checkStarting(t, s.base)

	err := s.wait(t, bound+20*time.Second)
	took := time.Since(start)
	if err == nil {
		t.Fatal("run returned nil")
	}
	for _, want := range []string{"database not reachable within APP_STARTUP_TIMEOUT (2s)", "connect"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if took < bound {
		t.Errorf("gave up after %v, before the %v bound", took, bound)
	}
	t.Logf("gave up after %v (bound %v)", took, bound)
	if n := strings.Count(s.logs.String(), "database not reachable yet"); n < 2 {
		t.Errorf("%d retries logged, want several", n)
	}
}

// A refusal that waiting cannot cure (Redis rejects the password) ends the
// start at once, with Redis's answer; the listener was up before Redis was
// asked.
func TestRunDoesNotRetryRefusedRedisPassword(t *testing.T) {
	m := miniredis.RunT(t)
	m.RequireAuth("the-right-one")
	s := launch(t, startingEnv(entdbtest.DSN(t), m.Addr()))
	err := s.wait(t, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "redis") || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("run with a Redis that wants a password: err=%v", err)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "msg=listening") {
		t.Errorf("the listener did not serve before Redis was asked; log:\n%s", logs)
	}
	if strings.Contains(logs, "redis not reachable yet") {
		t.Errorf("a refused password was retried; log:\n%s", logs)
	}
}
