package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// redisProcess is a private redis-server for a test that stops it.
type redisProcess struct {
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: the outage test needs a Redis it may stop (CI has one)")
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &redisProcess{port: port, cmd: cmd}
	t.Cleanup(p.stop)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *redisProcess) stop() {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

func (p *redisProcess) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", p.port) }

func readyStatus(t *testing.T, s *testServer) int {
	t.Helper()
	res, err := s.Client().Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Redis goes away: authenticated requests fail fast with
// SERVICE_UNAVAILABLE and HTTP 503, nothing is accepted that should have
// been checked, /readyz says not ready; when Redis is back the server
// recovers by itself.
func TestRedisOutageAndRecovery(t *testing.T) {
	t.Parallel()
	rp := startRedis(t, 0)
	e := newTestEnv(t)
	s := e.startWithRedis(t, rdb.Config{URL: rp.url()})
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	waitSynced(t, s)
	s.do(t, tok.Access, `{ me { id } }`, nil).mustOK(t)
	users := s.count(t, "users")

	rp.stop()
	// A read that needs nothing from Redis (the token, the user tier and
	// the leased API budget are in memory) may still be answered until the
	// instance's leases run out; past that it must fail closed.
	stopped := time.Now()
	for len(s.do(t, tok.Access, `{ me { id } }`, nil).Errors) == 0 {
		if time.Since(stopped) > auth.LeaseTTL+time.Second {
			t.Fatalf("an authenticated query still answered %v after Redis went away", time.Since(stopped))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, q := range map[string]struct{ token, query string }{
		"authenticated query": {tok.Access, `{ me { id } }`},
		"login":               {"", `mutation { login(input: {email: "ann@example.com", password: "plum-tree-42"}) { accessToken } }`},
		"register":            {"", `mutation { register(input: {email: "bob@example.com", password: "plum-tree-42", name: "Bob"}) { accessToken } }`},
	} {
		start := time.Now()
		r := s.do(t, q.token, q.query, nil)
		if got, want := r.code(t), "SERVICE_UNAVAILABLE"; got != want {
			t.Errorf("%s with Redis down: code=%q, want %q", name, got, want)
		}
		if got, want := r.Status, http.StatusServiceUnavailable; got != want {
			t.Errorf("%s with Redis down: status=%d, want %d", name, got, want)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s with Redis down: no Retry-After", name)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s with Redis down took %v: not failing fast", name, d)
		}
	}
	if got := s.count(t, "users"); got != users {
		t.Errorf("users=%d after a refused register, want %d", got, users)
	}
	if got := readyStatus(t, s); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down: %d", got)
	}

	// Redis is back (empty: it keeps nothing on disk). The server recovers
	// without a restart; the sessions it held are gone, so the old token is
	// refused, and signing in again works.
	e.clock.Advance(2 * time.Second) // the token was issued a while before the restart
	startRedis(t, rp.port)
	deadline := time.Now().Add(10 * time.Second)
	for readyStatus(t, s) != http.StatusOK || !s.app.sessions.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("not ready 10 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := s.do(t, tok.Access, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("token of a session Redis lost: code=%q, want %q", got, want)
	}
	again := s.login(t, "ann@example.com", "plum-tree-42")
	s.do(t, again.Access, `{ me { id } }`, nil).mustOK(t)
}

// The database is locked (SQLite) or unreachable (PostgreSQL): writes fail
// with SERVICE_UNAVAILABLE and HTTP 503, write nothing, and work again
// once the database is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var cut, restore func()
	if strings.HasPrefix(e.dsn, "sqlite:") {
		e.dsn += "?busy_timeout=200"
		path := strings.TrimSuffix(strings.TrimPrefix(e.dsn, "sqlite:"), "?busy_timeout=200")
		var conn *sql.Conn
		cut = func() {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if conn, err = db.Conn(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
				t.Fatal(err)
			}
		}
		restore = func() {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
		}
	} else {
		u, err := url.Parse(e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		proxy := newTCPProxy(t, "redis://"+u.Host) // a TCP proxy; the scheme is only parsed for the host
		u.Host = strings.TrimPrefix(proxy.url, "redis://")
		e.dsn = u.String()
		cut, restore = proxy.pause, proxy.resume
	}
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, tok.Access, "before", "body")

	cut()
	r := s.do(t, tok.Access, `mutation { createPost(input: {title: "during", content: "body"}) { id } }`, nil)
	if got, want := r.code(t), "SERVICE_UNAVAILABLE"; got != want {
		t.Errorf("write with the database down: code=%q, want %q (%s)\n%s", got, want, r.Errors[0].Message, s.logs)
	}
	if got, want := r.Status, http.StatusServiceUnavailable; got != want {
		t.Errorf("write with the database down: status=%d, want %d", got, want)
	}
	restore()
	deadline := time.Now().Add(5 * time.Second)
	for readyStatus(t, s) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready after the database came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.createPost(t, tok.Access, "after", "body")
	r = s.do(t, tok.Access, `{ posts { totalCount edges { node { title } } } }`, nil).mustOK(t)
	if got, want := r.get("posts.totalCount"), float64(2); got != want {
		t.Errorf("posts=%v, want %v (before, after: nothing from the refused write)", got, want)
	}
}

// On SIGTERM the server turns not-ready while it still serves, lets
// in-flight requests finish, and loses no acknowledged write.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "app.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	env := map[string]string{"APP_ADDR": "127.0.0.1:0", "DATABASE_URL": dsn, "APP_SHUTDOWN_GRACE": "400ms",
		"APP_JWT_SECRET": testSecret, "APP_RATE_API": "off", "APP_LOG_LEVEL": "info"}
	errc := make(chan error, 1)
	go func() { errc <- runWith(ctx, nil, env, io.Discard, stderr) }()
	addr := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("not listening: %s", stderr)
		}
	}
	waitReadyz(t, base)
	post := func(body, token string) (map[string]any, int, error) {
		req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return out, res.StatusCode, nil
	}
	out, _, err := post(`{"query":"mutation { register(input: {email: \"ann@example.com\", password: \"plum-tree-42\", name: \"Ann\"}) { accessToken } }"}`, "")
	if err != nil {
		t.Fatal(err)
	}
	token := out["data"].(map[string]any)["register"].(map[string]any)["accessToken"].(string)

	var (
		mu    sync.Mutex
		acked []string
		bad   []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				out, status, err := post(fmt.Sprintf(`{"query":"mutation { createPost(input: {title: \"w%d-%d\", content: \"c\"}) { id } }"}`, w, i), token)
				mu.Lock()
				switch {
				case err != nil: // refused after shutdown: the client knows it failed
				case status == http.StatusOK && out["errors"] == nil:
					acked = append(acked, out["data"].(map[string]any)["createPost"].(map[string]any)["id"].(string))
				default:
					bad = append(bad, fmt.Sprintf("%d %v", status, out))
				}
				mu.Unlock()
			}
		}()
	}
	// SIGTERM comes once writes are being acknowledged, so some are in
	// flight when it does.
	waitUntil(t, "writing", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 16
	})
	cancel() // what SIGTERM does through signal.NotifyContext
	waitUntil(t, "shutting down", func() bool { return strings.Contains(stderr.String(), "shutting down: not ready") })
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the grace period: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz during the grace period: %d, want 503", res.StatusCode)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d requests failed with a response instead of completing: %v", len(bad), bad[:min(3, len(bad))])
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	for _, id := range acked {
		if err := db.QueryRow("SELECT COUNT(*) FROM posts WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
			t.Errorf("acknowledged post %s is missing (%v)", id, err)
		}
	}
	t.Logf("%d writes acknowledged during the load, all stored", len(acked))
	_ = cachetest.External
}

// Instances starting at the same moment on a fresh database migrate one
// after another (PostgreSQL: an advisory lock), and all come up.
func TestInstancesStartTogether(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.config(t)
	apps := make([]*app, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range apps {
		rdb := cachetest.Open(t, e.redis.Config)
		wg.Add(1)
		go func() {
			defer wg.Done()
			apps[i], errs[i] = newApp(context.Background(), cfg, slog.New(slog.DiscardHandler), deps{now: e.clock.Now, rdb: rdb})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(apps[i].Close)
	}
	var token string
	for i, a := range apps {
		ts := httptest.NewServer(a.handler)
		t.Cleanup(ts.Close)
		s := &testServer{Server: ts, app: a, logs: &syncBuffer{}}
		if i == 0 {
			token = s.register(t, "ann@example.com", "plum-tree-42", "Ann").Access
		}
		s.do(t, token, `{ me { id } }`, nil).mustOK(t)
	}
}
