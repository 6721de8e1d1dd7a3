package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

// testSecret signs the tokens of every instance of one test environment: 41
// bytes, base64, the form production requires.
const testSecret = "dGVzdC1zZWNyZXQtb2YtYXQtbGVhc3QtdGhpcnR5LXR3by1ieXRlcyE="

// fakeClock is the injected clock of a test environment. It starts at the
// real time, so the TTLs it derives are sane on a real Redis too, and only
// moves when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is one deployment: a database, a Redis and a clock, shared by any
// number of server instances.
type testEnv struct {
	dsn   string
	redis *cachetest.Redis
	clock *fakeClock
	env   map[string]string
	// onHashSlot, if set, sees every password-hashing slot its instances
	// take (see auth.PasswordOptions.OnAcquire).
	onHashSlot func(held int)
	// tracer, if set, traces its instances (else tracing is off).
	tracer trace.TracerProvider
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return &testEnv{
		dsn:   entdbtest.DSN(t),
		redis: cachetest.New(t),
		clock: &fakeClock{t: time.Now()},
		env:   map[string]string{},
	}
}

// uncached turns every cache tier off: every read goes to the database.
func (e *testEnv) uncached() *testEnv {
	for _, tier := range []string{"APP_CACHE_RESPONSE_TTL", "APP_CACHE_PAGE_TTL", "APP_CACHE_USER_TTL"} {
		e.env[tier] = "0"
	}
	return e
}

// config is what an instance of the environment runs with.
func (e *testEnv) config(t *testing.T) Config {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":     e.dsn,
		"APP_REDIS_PREFIX": e.redis.Prefix,
		"APP_JWT_SECRET":   testSecret,
		"APP_LOG_LEVEL":    "warn",
		// The suite runs with -race, in parallel, on small machines: a
		// request's Redis budget (250 ms in production) would be spent by
		// the scheduler alone. Tests of the budget set their own.
		"APP_REDIS_REQUEST_BUDGET": "10s",
	}
	for k, v := range e.env {
		env[k] = v
	}
	cfg, err := loadWith(env)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	// A cheap (but real) argon2id cost keeps the suite fast.
	cfg.PasswordMemoryKiB, cfg.PasswordTime = 1024, 1
	return cfg
}

// testServer is one running instance, reached over real HTTP.
type testServer struct {
	*httptest.Server
	app  *app
	logs *syncBuffer
	// hc, if set, replaces the httptest client (an instance that is a
	// process of its own).
	hc *http.Client
}

// Client is the HTTP client that reaches the instance.
func (s *testServer) Client() *http.Client {
	if s.hc != nil {
		return s.hc
	}
	return s.Server.Client()
}

// start starts a new instance with its own database pool and Redis client.
func (e *testEnv) start(t *testing.T) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(requestIDHandler{slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})})
	a, err := newApp(context.Background(), e.config(t), log, deps{
		now:        e.clock.Now,
		rdb:        cachetest.Open(t, e.redis.Config),
		onHashSlot: e.onHashSlot,
		tracer:     e.tracer,
	})
	if err != nil {
		t.Fatalf("start instance: %v", err)
	}
	ts := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	s := &testServer{Server: ts, app: a, logs: logs}
	// An instance answers from memory once synced; before, it asks Redis
	// and the database per request, which tests counting statements or
	// round trips would see. Tests of the unsynced path cut it themselves.
	waitSynced(t, s)
	return s
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// gqlResponse is a decoded GraphQL response with its HTTP status.
type gqlResponse struct {
	Status     int
	Header     http.Header
	Data       map[string]any `json:"data"`
	Errors     []gqlError     `json:"errors"`
	Extensions map[string]any `json:"extensions"`
}

// code returns the extensions.code of the only error, failing otherwise.
func (r gqlResponse) code(t *testing.T) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want exactly one error, got %+v (data %v)", r.Errors, r.Data)
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// mustOK fails the test if the response has errors.
func (r gqlResponse) mustOK(t *testing.T) gqlResponse {
	t.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("want success, got status %d errors %+v", r.Status, r.Errors)
	}
	return r
}

// get walks the data by a dotted path, e.g. "login.user.id".
func (r gqlResponse) get(path string) any {
	var v any = r.Data
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (r gqlResponse) str(path string) string {
	s, _ := r.get(path).(string)
	return s
}

// do POSTs a GraphQL operation with an optional bearer token.
func (s *testServer) do(t *testing.T, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}

// caller is how a test request presents itself: the client address a
// trusted proxy reports (the test's loopback peer must be in
// APP_TRUSTED_PROXIES), cookie mode, cookies and a bearer token.
type caller struct {
	addr    string
	web     bool
	cookies []*http.Cookie
	token   string
}

// as sends an operation as c.
func (s *testServer) as(t *testing.T, c caller, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.addr != "" {
		req.Header.Set("X-Forwarded-For", c.addr)
	}
	if c.web {
		req.Header.Set("X-Auth-Client", "web")
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return s.send(t, req)
}

// cookie returns the cookie named name the response set, or nil.
func (r gqlResponse) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// postJSON POSTs any JSON body (persisted queries, extensions).
func (s *testServer) postJSON(t *testing.T, token string, body map[string]any) gqlResponse {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}

func (s *testServer) send(t *testing.T, req *http.Request) gqlResponse {
	t.Helper()
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := gqlResponse{Status: res.StatusCode, Header: res.Header}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", res.StatusCode, raw)
	}
	return out
}

// tokens is a signed-in user.
type tokens struct {
	UserID  string
	Access  string
	Refresh string
}

const authFields = `accessToken refreshToken tokenType expiresIn user { id email name role }`

func (s *testServer) register(t *testing.T, email, password, name string) tokens {
	t.Helper()
	r := s.do(t, "", `mutation($in: RegisterInput!) { register(input: $in) { `+authFields+` } }`,
		map[string]any{"in": map[string]any{"email": email, "password": password, "name": name}}).mustOK(t)
	return tokens{UserID: r.str("register.user.id"), Access: r.str("register.accessToken"), Refresh: r.str("register.refreshToken")}
}

func (s *testServer) login(t *testing.T, email, password string) tokens {
	t.Helper()
	r := s.do(t, "", `mutation($in: LoginInput!) { login(input: $in) { `+authFields+` } }`,
		map[string]any{"in": map[string]any{"email": email, "password": password}}).mustOK(t)
	return tokens{UserID: r.str("login.user.id"), Access: r.str("login.accessToken"), Refresh: r.str("login.refreshToken")}
}

func (s *testServer) refresh(t *testing.T, refresh string) gqlResponse {
	t.Helper()
	return s.do(t, "", `mutation($t: String!) { refresh(refreshToken: $t) { `+authFields+` } }`, map[string]any{"t": refresh})
}

func (s *testServer) createPost(t *testing.T, token, title, content string) string {
	t.Helper()
	r := s.do(t, token, `mutation($in: CreatePostInput!) { createPost(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"title": title, "content": content}}).mustOK(t)
	return r.str("createPost.id")
}

// count returns the number of rows of a table, read straight from the
// database, to prove that a refused write wrote nothing.
func (s *testServer) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := s.app.db.SQL.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
