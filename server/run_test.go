package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunEmbeddedDefaults starts the real program the way `go run ./server`
// does, with nothing configured but a free port: embedded SQLite file,
// embedded Redis, generated key. It must be ready within 5 seconds and shut
// down cleanly on cancel.
func TestRunEmbeddedDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	env := map[string]string{"APP_ADDR": "127.0.0.1:0"}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- runWith(ctx, nil, env, io.Discard, stderr) }()

	addrRe := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var base string
	for deadline := time.Now().Add(5 * time.Second); base == ""; {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening after 5s; log:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitReadyz(t, base)
	t.Logf("ready %v after start", time.Since(start))
	if time.Since(start) > 5*time.Second {
		t.Errorf("ready after %v, want within 5s", time.Since(start))
	}
	res, err := http.Post(base+"/query", "application/json", strings.NewReader(
		`{"query":"mutation { register(input: {email: \"a@example.com\", password: \"plum-tree-42\", name: \"A\"}) { user { email } } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"email":"a@example.com"`) {
		t.Errorf("register on embedded defaults: %s", body)
	}
	logs := stderr.String()
	for _, want := range []string{"embedded SQLite", "embedded in-process Redis", "APP_JWT_SECRET is not set"} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("log should announce %q exactly once:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(filepath.Join("data", "app.db")); err != nil {
		t.Errorf("default database file: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunRefusesProductionDefaults(t *testing.T) {
	err := runWith(context.Background(), nil, map[string]string{"APP_ENV": "production"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "production") {
		t.Fatalf("run in production with defaults: err=%v", err)
	}
}

// runWith runs the program with the environment m and nothing else in it.
func runWith(ctx context.Context, args []string, m map[string]string, stdout, stderr io.Writer) error {
	getenv, environ := mapEnv(m)
	return run(ctx, args, getenv, environ, stdout, stderr)
}

// waitReadyz waits until base's /readyz answers 200: the program listens
// before its database and Redis are open.
func waitReadyz(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after 30s (last: %v, %v)", base, res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
