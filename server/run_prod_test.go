package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// redisEnv is the configuration that points the server at cfg.
func redisEnv(cfg rdb.Config) map[string]string {
	switch {
	case len(cfg.ClusterAddrs) > 0:
		return map[string]string{"APP_REDIS_CLUSTER_ADDRS": strings.Join(cfg.ClusterAddrs, ",")}
	case len(cfg.SentinelAddrs) > 0:
		return map[string]string{"APP_REDIS_SENTINEL_ADDRS": strings.Join(cfg.SentinelAddrs, ","), "APP_REDIS_MASTER_NAME": cfg.MasterName}
	}
	return map[string]string{"REDIS_URL": cfg.URL}
}

// runningServer is the real program started by run, in a goroutine.
type runningServer struct {
	base   string // http://addr of APP_ADDR
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned err
	err    error
}

// startRun starts run with env (production by default, on a test database
// and Redis prefix, listening on a free port) and waits until it is ready.
// It is stopped when the test ends.
func startRun(t *testing.T, env map[string]string) *runningServer {
	t.Helper()
	r := cachetest.New(t)
	full := map[string]string{
		"APP_ENV": "production", "APP_ADDR": "127.0.0.1:0", "APP_METRICS_ADDR": "127.0.0.1:0",
		"DATABASE_URL": entdbtest.DSN(t), "APP_REDIS_PREFIX": r.Prefix, "APP_JWT_SECRET": strongSecret,
		"APP_ENCRYPTION_KEY": strongSecret, "APP_REQUIRE_HTTPS": "false", "APP_SHUTDOWN_GRACE": "0s",
		// Nothing listens: mail is retried in the background, unseen.
		"APP_SMTP_URL": "smtp://127.0.0.1:1?tls=none", "APP_PUBLIC_URL": "https://app.example.com",
		// These tests sign up and use the tokens at once.
		"APP_REQUIRE_VERIFIED_EMAIL": "false",
	}
	for k, v := range redisEnv(r.Config) {
		full[k] = v
	}
	for k, v := range env {
		full[k] = v
	}
	s := launch(t, full)
	s.base = "http://" + s.waitLog(t, "listening")
	waitReadyz(t, s.base)
	return s
}

// launch starts run with exactly env and returns at once. It is stopped
// when the test ends.
func launch(t *testing.T, env map[string]string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningServer{logs: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = runWith(ctx, nil, env, io.Discard, s.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	return s
}

// wait waits up to d for run to return, and returns its error.
func (s *runningServer) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(d):
		t.Fatalf("run still running after %v; log:\n%s", d, s.logs)
		return nil
	}
}

// waitLog waits for the log line msg and returns its addr field (text or
// JSON logs).
func (s *runningServer) waitLog(t *testing.T, msg string) string {
	t.Helper()
	re := regexp.MustCompile(`(?:msg=` + regexp.QuoteMeta(msg) + ` addr=(\S+))|(?:"msg":"` + regexp.QuoteMeta(msg) + `","addr":"([^"]+)")`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := re.FindStringSubmatch(s.logs.String()); m != nil {
			return m[1] + m[2]
		}
		select {
		case <-s.done:
			t.Fatalf("run returned %v before %q; log:\n%s", s.err, msg, s.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line after 10s; log:\n%s", msg, s.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// In production /metrics is not on the public port: by default it is served
// on 127.0.0.1:9090 only.
func TestRunProductionMetricsApart(t *testing.T) {
	ln, err := net.Listen("tcp", defaultProductionMetricsAddr)
	if err != nil {
		t.Skipf("%s, the production default, is taken on this machine: %v", defaultProductionMetricsAddr, err)
	}
	ln.Close()
	s := startRun(t, map[string]string{"APP_METRICS_ADDR": ""})
	metrics := "http://" + s.waitLog(t, "serving metrics")
	if got, want := metrics, "http://"+defaultProductionMetricsAddr; got != want {
		t.Errorf("metrics served on %s, want %s", got, want)
	}
	if got, want := getStatus(t, s.base+"/metrics"), http.StatusNotFound; got != want {
		t.Errorf("GET /metrics on APP_ADDR: status=%d, want %d", got, want)
	}
	if got, want := getStatus(t, metrics+"/metrics"), http.StatusOK; got != want {
		t.Errorf("GET /metrics on APP_METRICS_ADDR: status=%d, want %d", got, want)
	}
}

// Production refuses to put metrics on the API address, through run.
func TestRunProductionRefusesMetricsOnAPIAddr(t *testing.T) {
	env := productionBase()
	env["APP_ADDR"], env["APP_METRICS_ADDR"] = "127.0.0.1:18999", "127.0.0.1:18999"
	err := runWith(context.Background(), nil, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "APP_METRICS_ADDR") {
		t.Fatalf("run with metrics on the API address: err=%v", err)
	}
}
