package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jaeger is a Jaeger (cmd/jaeger, v2) of a test's own: OTLP/HTTP in,
// traces in memory, the query API out, each on a port of its own.
type jaeger struct {
	otlp, query string // http://127.0.0.1:port
}

// jaegerConfig is Jaeger's configuration (an OpenTelemetry Collector's):
// only what the test needs, on the ports given, so that parallel runs do
// not meet on Jaeger's default ports.
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 50ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// startJaeger runs the Jaeger binary JAEGER_BIN names (built by
// .ci/tools/jaeger/build.sh), or skips the test without one.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		t.Skip("JAEGER_BIN is not set: build Jaeger with `export JAEGER_BIN=$(.ci/tools/jaeger/build.sh)` (CI does)")
	}
	query, grpc, otlp := freePort(t), freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, query, grpc, otlp), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "--config", "file:"+cfg)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	j := &jaeger{otlp: fmt.Sprintf("http://127.0.0.1:%d", otlp), query: fmt.Sprintf("http://127.0.0.1:%d", query)}
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get(j.query + "/api/services")
		if err == nil {
			res.Body.Close()
			if c, err := net.Dial("tcp", strings.TrimPrefix(j.otlp, "http://")); err == nil && res.StatusCode == http.StatusOK {
				c.Close()
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger not answering after 30s; its log:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback port nothing listens on (for a program that
// cannot be told to pick its own and report it).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// jaegerSpan is a span as Jaeger's query API returns it.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s jaegerSpan) tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// trace reads a trace back from the query API until it has a span that
// done accepts, or fails after 20 s.
func (j *jaeger) trace(t *testing.T, id string, done func([]jaegerSpan) bool) []jaegerSpan {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err := http.Get(j.query + "/api/traces/" + id)
		if err == nil {
			var out struct {
				Data []struct {
					Spans []jaegerSpan `json:"spans"`
				} `json:"data"`
			}
			raw := new(bytes.Buffer)
			_, _ = raw.ReadFrom(res.Body)
			res.Body.Close()
			last = raw.String()
			if res.StatusCode == http.StatusOK && json.Unmarshal(raw.Bytes(), &out) == nil && len(out.Data) == 1 && done(out.Data[0].Spans) {
				return out.Data[0].Spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s not complete in Jaeger after 20s; last answer: %.2000s", id, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A real server process, configured by the standard OTEL_* variables
// alone, exports a query's trace to a real Jaeger; read back through
// Jaeger's query API, the trace continues the caller's traceparent and
// holds the HTTP, GraphQL, resolver, SQL and Redis spans, each under the
// one it ran in.
func TestTracingToJaeger(t *testing.T) {
	t.Parallel()
	j := startJaeger(t)
	e := newTestEnv(t)
	service := "authql-test-" + strings.ToLower(rand.Text()[:8])
	p := e.startProcess(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp,
		"OTEL_SERVICE_NAME":           service,
		"OTEL_BSP_SCHEDULE_DELAY":     "50",
	})
	s := p.server()
	u := s.register(t, "jaeger@example.com", "correct horse battery", "Jae")
	s.createPost(t, u.Access, "to Jaeger", "a post to trace")

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	traceID := hex.EncodeToString(id) // fresh per run
	const parentID = "00f067aa0ba902b7"
	body, _ := json.Marshal(map[string]any{"query": `query Feed { posts(first: 5) { edges { node { title author { name } } } } }`})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.Access)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	s.send(t, req).mustOK(t)

	has := func(ss []jaegerSpan, f func(jaegerSpan) bool) (jaegerSpan, bool) {
		for _, sp := range ss {
			if f(sp) {
				return sp, true
			}
		}
		return jaegerSpan{}, false
	}
	named := func(n string) func(jaegerSpan) bool { return func(s jaegerSpan) bool { return s.OperationName == n } }
	scoped := func(n string) func(jaegerSpan) bool {
		return func(s jaegerSpan) bool { return s.tag("otel.scope.name") == n }
	}
	sqlScope, redisScope := scoped("github.com/XSAM/otelsql"), scoped("github.com/redis/go-redis/extra/redisotel")
	spans := j.trace(t, traceID, func(ss []jaegerSpan) bool {
		_, h := has(ss, named("POST /query"))
		_, q := has(ss, sqlScope)
		_, r := has(ss, redisScope)
		return h && q && r
	})
	names := func() string {
		var out []string
		for _, sp := range spans {
			out = append(out, sp.OperationName+" ["+sp.tag("otel.scope.name")+"] "+sp.SpanID+"<-"+sp.parent())
		}
		return strings.Join(out, "\n")
	}
	byID := map[string]jaegerSpan{}
	for _, sp := range spans {
		byID[sp.SpanID] = sp
	}
	below := func(sp jaegerSpan, ancestor string) bool {
		for p := sp.parent(); p != ""; p = byID[p].parent() {
			if p == ancestor {
				return true
			}
			if _, ok := byID[p]; !ok {
				return false
			}
		}
		return false
	}

	httpSpan, _ := has(spans, named("POST /query"))
	if got := httpSpan.parent(); got != parentID {
		t.Errorf("HTTP span's parent=%q, want the caller's %s\n%s", got, parentID, names())
	}
	op, ok := has(spans, named("query Feed"))
	if !ok || op.parent() != httpSpan.SpanID {
		t.Fatalf("no GraphQL span \"query Feed\" under the HTTP span\n%s", names())
	}
	if got := op.tag("graphql.operation.type"); got != "query" {
		t.Errorf("graphql.operation.type=%q, want query", got)
	}
	posts, ok := has(spans, named("Query.posts"))
	if !ok || posts.parent() != op.SpanID {
		t.Fatalf("no Query.posts span under the GraphQL span\n%s", names())
	}
	if _, ok := has(spans, func(s jaegerSpan) bool { return sqlScope(s) && below(s, posts.SpanID) }); !ok {
		t.Errorf("no SQL span under Query.posts\n%s", names())
	}
	if _, ok := has(spans, func(s jaegerSpan) bool { return redisScope(s) && below(s, op.SpanID) }); !ok {
		t.Errorf("no Redis span under the GraphQL span\n%s", names())
	}
	if !strings.Contains(p.logs.String(), "trace_id="+traceID) {
		t.Errorf("the process logged no line with trace_id=%s", traceID)
	}
}
