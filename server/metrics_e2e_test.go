package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the server's /metrics and returns every sample by its
// series, e.g. `authql_jwt_verified_total{result="ok"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, res.StatusCode)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// sample returns one series' value, failing if it is not exposed.
func sample(t *testing.T, samples map[string]float64, series string) float64 {
	t.Helper()
	v, ok := samples[series]
	if !ok {
		t.Fatalf("no series %s", series)
	}
	return v
}

// After a login, a refresh, a refresh-token theft, a rate-limited login,
// cache hits and refused tokens, /metrics counts each of them, with the
// labels docs/OPERATIONS.md lists.
func TestMetricsCountTraffic(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	// Sign-up makes this address known to the account: its failures spend
	// the known budget.
	e.env["APP_RATE_LOGIN_KNOWN"] = "1/1h"
	s := e.start(t)
	in := func(email, password string) map[string]any {
		return map[string]any{"in": map[string]any{"email": email, "password": password}}
	}

	reg := s.do(t, "", opSignUp, map[string]any{"in": map[string]any{
		"email": "mia@example.com", "password": "quiet-harbour-lamp", "name": "Mia"}}).mustOK(t)
	owner := reg.str("register.accessToken")
	login := s.do(t, "", opLogin, in("mia@example.com", "quiet-harbour-lamp")).mustOK(t)
	if got, want := s.do(t, "", opLogin, in("mia@example.com", "wrong-password-1")).code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("wrong password: code=%s, want %s", got, want)
	}
	if got, want := s.do(t, "", opLogin, in("mia@example.com", "quiet-harbour-lamp")).code(t), "RATE_LIMITED"; got != want {
		t.Fatalf("third login: code=%s, want %s", got, want)
	}
	s.do(t, "", opRefresh, map[string]any{"t": login.str("login.refreshToken")}).mustOK(t)

	s.do(t, owner, opPost, map[string]any{"in": map[string]any{"title": "Hello", "content": "First"}}).mustOK(t)
	s.do(t, owner, opFeed, nil).mustOK(t)
	s.do(t, owner, opFeed, nil).mustOK(t)   // the response tier answers
	s.do(t, owner, opTitles, nil).mustOK(t) // another response; the page tier answers
	if got, want := s.do(t, "", opMe, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("me without a token: code=%s, want %s", got, want)
	}
	if got, want := s.do(t, "not-a-token", opMe, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("me with garbage: code=%s, want %s", got, want)
	}

	// The rotated refresh token, presented after the grace window: theft.
	e.clock.Advance(11 * time.Second)
	if got, want := s.refresh(t, login.str("login.refreshToken")).code(t), "UNAUTHENTICATED"; got != want {
		t.Fatalf("reused refresh token: code=%s, want %s", got, want)
	}
	s.do(t, login.str("login.accessToken"), opMe, nil) // its session was revoked
	e.clock.Advance(16 * time.Minute)
	s.do(t, owner, opMe, nil) // expired

	if res, err := http.Get(s.URL + "/healthz"); err == nil {
		res.Body.Close()
	}
	if res, err := http.Get(s.URL + "/no-such-page"); err == nil {
		res.Body.Close()
	}

	m := scrape(t, s.URL+"/metrics")
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`authql_jwt_issued_total`, 3}, // register, login, refresh
		{`authql_jwt_verified_total{result="invalid"}`, 1},
		{`authql_jwt_verified_total{result="revoked"}`, 1},
		{`authql_jwt_verified_total{result="expired"}`, 1},
		{`authql_jwt_verified_total{result="unavailable"}`, 0},
		{`authql_refresh_reuse_detected_total`, 1},
		{`authql_rate_limited_total{scope="login"}`, 1},
		{`authql_rate_limited_total{scope="register"}`, 0},
		{`authql_graphql_responses_total{code="RATE_LIMITED"}`, 1},
		{`authql_graphql_operation_duration_seconds_count{operation="Login",type="mutation"}`, 3},
		{`authql_graphql_operation_duration_seconds_count{operation="Feed",type="query"}`, 2},
		{`authql_graphql_operation_duration_seconds_count{operation="anonymous",type="mutation"}`, 1},
		{`authql_http_request_duration_seconds_count{route="/healthz",status="200"}`, 1},
		{`authql_http_request_duration_seconds_count{route="unmatched",status="404"}`, 1},
		{`authql_redis_up`, 1},
	} {
		if got := sample(t, m, c.series); got != c.want {
			t.Errorf("%s=%v, want %v", c.series, got, c.want)
		}
	}
	// The second Feed is answered by the response tier: from the process's
	// copy, or from Redis while the bus was not yet synced.
	if got := sample(t, m, `authql_cache_lookups_total{result="hit",tier="response_local"}`) +
		sample(t, m, `authql_cache_lookups_total{result="hit",tier="response"}`); got != 1 {
		t.Errorf("response tier hits (in the process and in Redis)=%v, want 1", got)
	}
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`authql_jwt_verified_total{result="ok"}`, 4},
		{`authql_graphql_responses_total{code="OK"}`, 6},
		{`authql_graphql_responses_total{code="UNAUTHENTICATED"}`, 4},
		{`authql_cache_lookups_total{result="miss",tier="page"}`, 1},
		{`authql_cache_lookups_total{result="hit",tier="page"}`, 1},
		{`authql_cache_lookups_total{result="miss",tier="count"}`, 1},
		{`authql_http_request_duration_seconds_count{route="/query",status="200"}`, 14},
		{`authql_graphql_operation_duration_seconds_sum{operation="Login",type="mutation"}`, 1e-9},
		{`authql_redis_pool_connections{state="total"}`, 1},
		{`authql_redis_pool_hits_total`, 1},
		{`go_sql_open_connections{db_name="authql"}`, 1},
		{`go_goroutines`, 1},
	} {
		if got := sample(t, m, c.series); got < c.min {
			t.Errorf("%s=%v, want at least %v", c.series, got, c.min)
		}
	}
	for _, series := range []string{
		`authql_cache_lookups_total{result="hit",tier="user_local"}`,
		`authql_cache_lookups_total{result="miss",tier="user_redis"}`,
		`authql_cache_lookups_total{result="miss",tier="apq"}`,
		`authql_bus_synced`,
		`authql_http_requests_in_flight`,
		`authql_requests_running`,
		`authql_requests_waiting`,
		`authql_requests_queued_total`,
		`authql_requests_late_total`,
		`authql_redis_pool_timeouts_total`,
		`go_sql_wait_count_total{db_name="authql"}`,
	} {
		sample(t, m, series)
	}
	for series := range m {
		if strings.Contains(series, "quiet-harbour-lamp") || strings.Contains(series, "mia@example.com") {
			t.Errorf("a metric label holds request data: %s", series)
		}
	}
}

// Operation names are chosen by clients; the label stays bounded.
func TestOperationNameLabelIsBounded(t *testing.T) {
	t.Parallel()
	n := opNames{max: 3}
	for _, c := range []struct{ name, want string }{
		{"", "anonymous"},
		{"A", "A"},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
		{"B", "B"},
		{"C", "other"},
		{"A", "A"},
	} {
		if got := n.label(c.name); got != c.want {
			t.Errorf("label(%.10q)=%q, want %q", c.name, got, c.want)
		}
	}
}

// /metrics answers over plain HTTP even where HTTPS is required (a
// scraper talks to the instance directly).
func TestMetricsOverPlainHTTPInProduction(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_REQUIRE_HTTPS"] = "true"
	s := e.start(t)
	if got := sample(t, scrape(t, s.URL+"/metrics"), `authql_redis_up`); got != 1 {
		t.Errorf("authql_redis_up=%v, want 1", got)
	}
}

// With APP_METRICS_ADDR the real program serves /metrics on that listener
// only, and keeps it up until the main server has drained.
func TestRunMetricsOnOwnListener(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	env := map[string]string{"APP_ADDR": "127.0.0.1:0", "APP_METRICS_ADDR": "127.0.0.1:0"}
	errc := make(chan error, 1)
	go func() { errc <- runWith(ctx, nil, env, io.Discard, stderr) }()

	addrs := map[string]string{}
	re := regexp.MustCompile(`msg="?(listening|serving metrics)"? addr=(\S+)`)
	for deadline := time.Now().Add(5 * time.Second); len(addrs) < 2; time.Sleep(10 * time.Millisecond) {
		for _, m := range re.FindAllStringSubmatch(stderr.String(), -1) {
			addrs[m[1]] = "http://" + m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening after 5s; log:\n%s", stderr)
		}
	}
	waitReadyz(t, addrs["listening"])
	if got := sample(t, scrape(t, addrs["serving metrics"]+"/metrics"), `authql_redis_up`); got != 1 {
		t.Errorf("authql_redis_up=%v, want 1", got)
	}
	res, err := http.Get(addrs["listening"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.StatusCode, http.StatusNotFound; got != want {
		t.Errorf("/metrics on the main listener: status %d, want %d", got, want)
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

// APP_PPROF serves the profiles on the metrics listener, and never on the
// public one; without a metrics listener of its own it is refused.
func TestPprofOnMetricsListenerOnly(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, err := loadWith(map[string]string{"APP_PPROF": "true"}); err == nil || !strings.Contains(err.Error(), "APP_PPROF") {
		t.Errorf("APP_PPROF without APP_METRICS_ADDR: err=%v, want a refusal naming APP_PPROF", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	env := map[string]string{"APP_ADDR": "127.0.0.1:0", "APP_METRICS_ADDR": "127.0.0.1:0", "APP_PPROF": "true"}
	errc := make(chan error, 1)
	go func() { errc <- runWith(ctx, nil, env, io.Discard, stderr) }()
	addrs := map[string]string{}
	re := regexp.MustCompile(`msg="?(listening|serving metrics)"? addr=(\S+)`)
	for deadline := time.Now().Add(5 * time.Second); len(addrs) < 2; time.Sleep(10 * time.Millisecond) {
		for _, m := range re.FindAllStringSubmatch(stderr.String(), -1) {
			addrs[m[1]] = "http://" + m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening after 5s; log:\n%s", stderr)
		}
	}
	waitReadyz(t, addrs["listening"])
	status := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if got, want := status(addrs["serving metrics"]+path), http.StatusOK; got != want {
			t.Errorf("%s on the metrics listener: status %d, want %d", path, got, want)
		}
		if got, want := status(addrs["listening"]+path), http.StatusNotFound; got != want {
			t.Errorf("%s on the public listener: status %d, want %d", path, got, want)
		}
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
