package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/cache/rdb"
)

// Named operations, so the operation label and the api log can be checked.
const (
	opSignUp  = `mutation SignUp($in: RegisterInput!) { register(input: $in) { accessToken refreshToken user { id } } }`
	opLogin   = `mutation Login($in: LoginInput!) { login(input: $in) { accessToken refreshToken } }`
	opRefresh = `mutation Refresh($t: String!) { refresh(refreshToken: $t) { accessToken refreshToken } }`
	opPost    = `mutation NewPost($in: CreatePostInput!) { createPost(input: $in) { id } }`
	opFeed    = `query Feed { posts(first: 10) { totalCount edges { node { title author { name } } } } }`
	opTitles  = `query Titles { posts(first: 10) { edges { node { title } } } }`
	opMe      = `query Me { me { id } }`
	opLogout  = `mutation Logout { logout }`
)

// startLogged starts an instance of e with the program's own logger for
// its configuration (JSON or text, stderr or APP_LOG_DIR), writing to w.
func (e *testEnv) startLogged(t *testing.T, w io.Writer) *testServer {
	t.Helper()
	cfg := e.config(t)
	log, closeLog, err := newLogger(cfg, w)
	if err != nil {
		t.Fatalf("logger: %v", err)
	}
	a, err := newApp(context.Background(), cfg, log, deps{now: e.clock.Now, rdb: cachetest.Open(t, e.redis.Config)})
	if err != nil {
		t.Fatalf("start instance: %v", err)
	}
	ts := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
		closeLog()
	})
	return &testServer{Server: ts, app: a}
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// Every GraphQL operation gets one api line with its name, type, duration,
// outcome, status and user; auth events and slow operations have their own
// streams; and nothing secret a client sent reaches the log.
func TestLogStreams(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_LOG_FORMAT"] = "json"
	e.env["APP_LOG_LEVEL"] = "info"
	e.env["APP_SLOW_THRESHOLD"] = "1ns" // every operation is slow
	logs := &syncBuffer{}
	s := e.startLogged(t, logs)

	const password = "velvet-otter-9137"
	const secretTitle = "a title only the variables hold"
	reg := s.do(t, "", opSignUp, map[string]any{"in": map[string]any{
		"email": "ola@example.com", "password": password, "name": "Ola"}}).mustOK(t)
	access, refresh := reg.str("register.accessToken"), reg.str("register.refreshToken")
	s.do(t, access, opPost, map[string]any{"in": map[string]any{"title": secretTitle, "content": secretTitle}}).mustOK(t)
	if got, want := s.do(t, "", opMe, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("me without a token: code=%s, want %s", got, want)
	}
	rot := s.do(t, "", opRefresh, map[string]any{"t": refresh}).mustOK(t)
	access2 := rot.str("refresh.accessToken")
	s.do(t, access2, opLogout, nil).mustOK(t)
	bad := s.do(t, "", `{ me { id `, nil)

	raw := logs.String()
	for _, secret := range []string{password, secretTitle, access, refresh, access2, rot.str("refresh.refreshToken")} {
		if strings.Contains(raw, secret) {
			t.Errorf("the log holds %.24q...", secret)
		}
	}
	var api, perf []map[string]any
	events := map[string]bool{}
	for _, l := range logLines(t, raw) {
		switch l["stream"] {
		case "api":
			api = append(api, l)
		case "perf":
			perf = append(perf, l)
		case "auth":
			ev, _ := l["event"].(string)
			events[ev] = true
			if l["request_id"] == nil {
				t.Errorf("auth line without request_id: %v", l)
			}
		}
	}
	for _, ev := range []string{"login", "refresh", "logout"} {
		if !events[ev] {
			t.Errorf("no auth event %q in the log", ev)
		}
	}
	type apiLine struct{ operation, typ, outcome string }
	want := []apiLine{
		{"SignUp", "mutation", "ok"}, {"NewPost", "mutation", "ok"}, {"Me", "query", "UNAUTHENTICATED"},
		{"Refresh", "mutation", "ok"}, {"Logout", "mutation", "ok"}, {"anonymous", "unknown", "GRAPHQL_PARSE_FAILED"},
	}
	if got := len(api); got != len(want) {
		t.Fatalf("%d api lines, want %d (one per operation):\n%s", got, len(want), raw)
	}
	for i, l := range api {
		got := apiLine{fmt.Sprint(l["operation"]), fmt.Sprint(l["type"]), fmt.Sprint(l["outcome"])}
		if got != want[i] {
			t.Errorf("api line %d=%+v, want %+v", i, got, want[i])
		}
		if id, _ := l["request_id"].(string); id == "" {
			t.Errorf("api line %d has no request_id: %v", i, l)
		}
		if d, ok := l["duration_ms"].(float64); !ok || d <= 0 {
			t.Errorf("api line %d: duration_ms=%v", i, l["duration_ms"])
		}
	}
	if got, want := api[5]["status"], float64(bad.Status); got != want {
		t.Errorf("parse failure logged with status %v, want %v", got, want)
	}
	if got, want := api[1]["status"], float64(http.StatusOK); got != want {
		t.Errorf("createPost logged with status %v, want %v", got, want)
	}
	if got, want := api[1]["user_id"], reg.str("register.user.id"); want != "" && got != want {
		t.Errorf("createPost logged for user %v, want %v", got, want)
	}
	if api[1]["user_id"] == nil {
		t.Errorf("createPost logged without user_id: %v", api[1])
	}
	if got, want := len(perf), len(want); got != want {
		t.Fatalf("%d perf lines, want %d", got, want)
	}
	for _, key := range []string{"operation", "duration_ms", "complexity", "sql_statements", "redis_round_trips", "request_id"} {
		if _, ok := perf[1][key]; !ok {
			t.Errorf("perf line has no %s: %v", key, perf[1])
		}
	}
	if got := perf[1]["sql_statements"].(float64); got < 1 {
		t.Errorf("createPost perf line: sql_statements=%v, want at least 1", got)
	}
}

// With APP_LOG_DIR every stream has its file, and each line lands in the
// file of its stream.
func TestLogDirOneFilePerStream(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	dir := filepath.Join(t.TempDir(), "logs")
	e.env["APP_LOG_DIR"] = dir
	e.env["APP_LOG_LEVEL"] = "info"
	e.env["APP_SLOW_THRESHOLD"] = "1ns"
	stderr := &syncBuffer{}
	s := e.startLogged(t, stderr)
	s.do(t, "", opSignUp, map[string]any{"in": map[string]any{
		"email": "ida@example.com", "password": "copper-kettle-77", "name": "Ida"}}).mustOK(t)
	// A record that names its stream itself, under a group.
	s.app.log.WithGroup("g").Info("grouped", "stream", "perf")
	s.app.log.Info("own stream", "stream", "perf")

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	files := map[string]string{}
	for _, name := range []string{"auth.log", "api.log", "error.log", "perf.log", "app.log"} {
		files[name] = read(name)
	}
	for name, want := range map[string][]string{
		"auth.log": {"session started", "event=login"},
		"api.log":  {"graphql operation", "operation=SignUp", "request_id="},
		"perf.log": {"slow operation", "operation=SignUp", "own stream"},
		"app.log":  {"database ready", "grouped"},
	} {
		for _, w := range want {
			if !strings.Contains(files[name], w) {
				t.Errorf("%s does not hold %q:\n%s", name, w, files[name])
			}
		}
	}
	stream := regexp.MustCompile(`stream=(\w+)`)
	for name, body := range files {
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			m := stream.FindStringSubmatch(line)
			if m == nil || strings.Contains(line, "g.stream=") {
				continue
			}
			if got, want := m[1]+".log", name; got != want {
				t.Errorf("a %s line is in %s: %s", m[1], name, line)
			}
		}
	}
	if got := stderr.String(); got != "" {
		t.Errorf("with APP_LOG_DIR, stderr got:\n%s", got)
	}
}

// go-redis's own messages (a dial refused while Redis is down, a
// subscription reconnecting) go through the process logger: in JSON every
// line of stderr is one JSON object, through a Redis stop and restart.
func TestRedisClientLogsAreJSON(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	e := newTestEnvOn(t, rdb.Config{URL: srv.URL})
	p := e.startProcess(t, map[string]string{"APP_LOG_FORMAT": "json"})
	s := p.server()
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	srv.Stop()
	for range 3 {
		s.do(t, tok.Access, `{ me { id } }`, nil)
	}
	srv.Start()
	p.waitReady(t, t.Context())
	s.login(t, "ann@example.com", "plum-tree-42")

	// Raw or routed, go-redis's lines contain "redis: ".
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "redis: "); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no go-redis line in the log after a Redis restart:\n%s", p.logs)
		}
	}
	for i, line := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line %d is not JSON: %s", i+1, line)
		}
	}
	if !strings.Contains(p.logs.String(), `"msg":"go-redis: `) {
		t.Errorf("no go-redis line went through the logger")
	}
}
