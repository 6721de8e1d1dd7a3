package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The server binary, built once per test run for tests that need real
// processes (to pause one with SIGSTOP, to kill one).
var serverBinary = struct {
	once sync.Once
	path string
	err  error
}{}

// TestMain removes the binary built for the run. The instances the tests
// start in this process do not go through run, which routes go-redis's
// own log into the instance's: their dial failures during the outage
// tests are expected, and are dropped rather than written raw to stderr.
func TestMain(m *testing.M) {
	// In-process instances: what libraries print on their own is noise here.
	redis.SetLogger(redisLogger{slog.New(slog.DiscardHandler)})
	stdlog.SetOutput(io.Discard)
	code := m.Run()
	if serverBinary.path != "" {
		_ = os.RemoveAll(filepath.Dir(serverBinary.path))
	}
	os.Exit(code)
}

// buildServer builds this package into a temporary directory (with the
// Dockerfile's flags, so the build cache is shared with deploy/topology.sh).
func buildServer(t *testing.T) string {
	t.Helper()
	serverBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "authql-server-")
		if err != nil {
			serverBinary.err = err
			return
		}
		path := filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-trimpath", "-o", path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			serverBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		serverBinary.path = path
	})
	if serverBinary.err != nil {
		t.Fatal(serverBinary.err)
	}
	return serverBinary.path
}

// process is the server running as a process of its own.
type process struct {
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
	// logsDone is closed once stderr is read to its end: the process has
	// exited (or closed it).
	logsDone chan struct{}
}

// startProcess runs an instance of the environment as a process, with its
// database, Redis and key, and waits until it listens. It is killed when
// the test ends.
func (e *testEnv) startProcess(t *testing.T, extra map[string]string) *process {
	t.Helper()
	bin := buildServer(t)
	env := map[string]string{
		"APP_ADDR":         "127.0.0.1:0",
		"DATABASE_URL":     e.dsn,
		"APP_REDIS_PREFIX": e.redis.Prefix,
		"APP_JWT_SECRET":   testSecret,
		"APP_LOG_FORMAT":   "text",
	}
	for k, v := range redisEnv(e.redis.Config) {
		env[k] = v
	}
	for k, v := range e.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, logsDone: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot die
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		defer close(p.logsDone)
		// The text format, or the JSON one.
		re := regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = io.WriteString(p.logs, line+"\n")
			if m := re.FindStringSubmatch(line); m != nil {
				addr <- m[1] + m[2]
			}
		}
	}()
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("process not listening after 30s; log:\n%s", p.logs)
	}
	waitReadyz(t, p.URL)
	return p
}

// server returns a testServer view of the process for the request helpers.
func (p *process) server() *testServer {
	return &testServer{Server: &httptest.Server{URL: p.URL}, logs: p.logs, hc: &http.Client{Timeout: 30 * time.Second}}
}

// wait waits up to d for the process to exit, with its whole log read,
// and returns how it exited; ok is false if it still runs.
func (p *process) wait(d time.Duration) (err error, ok bool) {
	select {
	case <-p.logsDone:
		return p.cmd.Wait(), true
	case <-time.After(d):
		return nil, false
	}
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// pause stops the process (SIGSTOP) and returns once the kernel reports it
// stopped: the signal is delivered asynchronously.
func (p *process) pause(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGSTOP)
	stat := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no procfs: trust the signal
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process not stopped 5s after SIGSTOP: %s", b)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitReady waits until the process's /readyz answers 200, or fails.
func (p *process) waitReady(t *testing.T, ctx context.Context) {
	t.Helper()
	s := p.server()
	deadline := time.Now().Add(10 * time.Second)
	for readyStatus(t, s) != 200 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("process never ready; log:\n%s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
