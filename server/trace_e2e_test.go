package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A caller's trace, as a W3C traceparent names it.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

// spans is what a test's tracer recorded.
type spans struct{ rec *tracetest.SpanRecorder }

func newTracedEnv(t *testing.T) (*testEnv, spans) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := newTestEnv(t)
	e.tracer = tp
	return e, spans{rec}
}

// waitFor returns the ended spans of trace id once one of them matches
// done (the server ends its span after the client may have read the
// response).
func (s spans) waitFor(t *testing.T, id string, done func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []sdktrace.ReadOnlySpan
		for _, sp := range s.rec.Ended() {
			if sp.SpanContext().TraceID().String() == id {
				out = append(out, sp)
			}
		}
		if slices.ContainsFunc(out, done) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: no matching span among %d: %v", id, len(out), spanNames(out))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func spanNames(ss []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, sp := range ss {
		names = append(names, sp.Name()+" ("+sp.InstrumentationScope().Name+")")
	}
	return names
}

func byName(name string) func(sdktrace.ReadOnlySpan) bool {
	return func(sp sdktrace.ReadOnlySpan) bool { return sp.Name() == name }
}

func fromScope(scope string) func(sdktrace.ReadOnlySpan) bool {
	return func(sp sdktrace.ReadOnlySpan) bool { return sp.InstrumentationScope().Name == scope }
}

// mustFind returns the only span matching f.
func mustFind(t *testing.T, ss []sdktrace.ReadOnlySpan, what string, f func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, sp := range ss {
		if f(sp) {
			found = append(found, sp)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d spans, want 1; the trace: %v", what, len(found), spanNames(ss))
	}
	return found[0]
}

// descends reports whether sp is below ancestor in the trace ss.
func descends(ss []sdktrace.ReadOnlySpan, sp, ancestor sdktrace.ReadOnlySpan) bool {
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range ss {
		byID[s.SpanContext().SpanID()] = s
	}
	for p := sp.Parent(); p.IsValid(); {
		if p.SpanID() == ancestor.SpanContext().SpanID() {
			return true
		}
		up, ok := byID[p.SpanID()]
		if !ok {
			return false
		}
		p = up.Parent()
	}
	return false
}

func attr(sp sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, a := range sp.Attributes() {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// A query sent with a traceparent continues the caller's trace: the HTTP
// span is the caller's child, the GraphQL operation the HTTP span's, the
// resolver the operation's, and the SQL statements and Redis commands the
// request ran are below the operation. Every log line of the request
// carries the trace id.
func TestTracingSpansOfAQuery(t *testing.T) {
	t.Parallel()
	env, rec := newTracedEnv(t)
	s := env.start(t)
	u := s.register(t, "trace@example.com", "correct horse battery", "Tracy")
	s.createPost(t, u.Access, "traced", "a post to read back")

	body, _ := json.Marshal(map[string]any{"query": `query Feed { posts(first: 5) { edges { node { title author { name } } } } }`})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.Access)
	req.Header.Set("Traceparent", traceparent)
	req.Header.Set("X-Request-ID", "traced-feed")
	s.send(t, req).mustOK(t)

	ss := rec.waitFor(t, callerTraceID, byName("POST /query"))
	httpSpan := mustFind(t, ss, "HTTP span", byName("POST /query"))
	if got, want := httpSpan.SpanKind(), trace.SpanKindServer; got != want {
		t.Errorf("HTTP span kind=%v, want %v", got, want)
	}
	if got, want := httpSpan.Parent().SpanID().String(), callerSpanID; got != want || !httpSpan.Parent().IsRemote() {
		t.Errorf("HTTP span parent=%s (remote %v), want the caller's %s", got, httpSpan.Parent().IsRemote(), want)
	}
	op := mustFind(t, ss, "GraphQL span", byName("query Feed"))
	if got, want := op.Parent().SpanID(), httpSpan.SpanContext().SpanID(); got != want {
		t.Errorf("GraphQL span parent=%s, want the HTTP span %s", got, want)
	}
	if v, _ := attr(op, "graphql.operation.name"); v.AsString() != "Feed" {
		t.Errorf("graphql.operation.name=%q, want Feed", v.AsString())
	}
	if v, _ := attr(op, "graphql.operation.type"); v.AsString() != "query" {
		t.Errorf("graphql.operation.type=%q, want query", v.AsString())
	}
	if v, ok := attr(op, "graphql.operation.complexity"); !ok || v.AsInt64() <= 0 {
		t.Errorf("graphql.operation.complexity=%v (set %v), want > 0", v.AsInt64(), ok)
	}
	if _, ok := attr(op, "graphql.error.codes"); ok {
		t.Errorf("a successful operation has graphql.error.codes")
	}
	posts := mustFind(t, ss, "Query.posts span", byName("Query.posts"))
	if got, want := posts.Parent().SpanID(), op.SpanContext().SpanID(); got != want {
		t.Errorf("Query.posts parent=%s, want the GraphQL span %s", got, want)
	}
	if slices.ContainsFunc(ss, byName("Post.title")) {
		t.Errorf("a field without a resolver has a span: %v", spanNames(ss))
	}
	sqlUnderPosts := slices.ContainsFunc(ss, func(sp sdktrace.ReadOnlySpan) bool {
		return fromScope("github.com/XSAM/otelsql")(sp) && descends(ss, sp, posts)
	})
	if !sqlUnderPosts {
		t.Errorf("no SQL span below Query.posts: %v", spanNames(ss))
	}
	redisUnderOp := slices.ContainsFunc(ss, func(sp sdktrace.ReadOnlySpan) bool {
		return fromScope("github.com/redis/go-redis/extra/redisotel")(sp) && descends(ss, sp, op)
	})
	if !redisUnderOp {
		t.Errorf("no Redis span below the GraphQL span: %v", spanNames(ss))
	}
	for _, sp := range ss {
		if sp.SpanContext().TraceID() != httpSpan.SpanContext().TraceID() || sp == httpSpan {
			continue
		}
		if !descends(ss, sp, httpSpan) {
			t.Errorf("span %s is not below the HTTP span", sp.Name())
		}
	}
	var lines int
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if !strings.Contains(line, "request_id=traced-feed") {
			continue
		}
		lines++
		if !strings.Contains(line, "trace_id="+callerTraceID) {
			t.Errorf("a log line of the request has no trace_id=%s: %s", callerTraceID, line)
		}
	}
	if lines == 0 || !strings.Contains(s.logs.String(), "stream=api") {
		t.Errorf("no log line of the request (want its api line):\n%s", s.logs.String())
	}
}

// Spans never hold what a client sent but the operation's name: not the
// document, not its variables (a password), not the bearer or refresh
// tokens, whatever instrumentation made them.
func TestTracingRecordsNoSecrets(t *testing.T) {
	t.Parallel()
	env, rec := newTracedEnv(t)
	s := env.start(t)
	const password = "s3cret-horse-battery-staple"
	u := s.register(t, "secret@example.com", password, "Sam")
	u2 := s.login(t, "secret@example.com", password)
	s.refresh(t, u2.Refresh).mustOK(t)
	s.do(t, u.Access, `{ me { id } }`, nil).mustOK(t)
	s.do(t, "", `{ nope }`, nil) // refused: validation

	deadline := time.Now().Add(5 * time.Second)
	for len(rec.rec.Ended()) == 0 || !slices.ContainsFunc(rec.rec.Ended(), byName("query")) {
		if time.Now().After(deadline) {
			t.Fatalf("no span of the last query; got %v", spanNames(rec.rec.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	secrets := []string{password, u.Access, u.Refresh, u2.Access, u2.Refresh, "RegisterInput", "nope"}
	for _, sp := range rec.rec.Ended() {
		for _, a := range sp.Attributes() {
			for _, sec := range secrets {
				if strings.Contains(a.Value.Emit(), sec) {
					t.Errorf("span %s attribute %s holds %q", sp.Name(), a.Key, sec)
				}
			}
		}
	}
	refused := mustFind(t, rec.rec.Ended(), "refused operation", func(sp sdktrace.ReadOnlySpan) bool {
		v, ok := attr(sp, "graphql.error.codes")
		return ok && sp.Name() == "GraphQL Operation" && slices.Contains(v.AsStringSlice(), "GRAPHQL_VALIDATION_FAILED")
	})
	if refused.Status().Code != 0 { // codes.Unset: the client's mistake
		t.Errorf("a refused query marks its span %v", refused.Status())
	}
}

// Tracing off (no OTLP endpoint): a traceparent is not taken up and no log
// line has a trace id.
func TestTracingOffIgnoresTraceparent(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	body, _ := json.Marshal(map[string]any{"query": `{ nope }`})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", traceparent)
	s.send(t, req)
	if logs := s.logs.String(); strings.Contains(logs, "trace_id") {
		t.Errorf("tracing off, a log line has a trace id:\n%s", logs)
	}
}

// A caller's traceparent is taken up in development from anyone, and in
// production only from a trusted proxy: a client that picks its own trace
// id gets a trace of its own.
func TestTracingTraceparentTrust(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, env, peer string
		continued       bool
	}{
		{"development, any peer", "development", "203.0.113.9:4000", true},
		{"production, trusted proxy", "production", "10.1.2.3:4000", true},
		{"production, untrusted peer", "production", "203.0.113.9:4000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			a := &app{tracer: tp, cfg: Config{Env: tt.env, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
			var got trace.SpanContext
			h := a.traceHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = trace.SpanContextFromContext(r.Context())
			}))
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("Traceparent", traceparent)
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !got.IsValid() {
				t.Fatalf("the request has no span")
			}
			if continued := got.TraceID().String() == callerTraceID; continued != tt.continued {
				t.Errorf("trace %s continued=%v, want %v", got.TraceID(), continued, tt.continued)
			}
		})
	}
}

// OTEL_* variables are the SDK's: production does not take them for
// misspelled settings, and a protocol the exporter does not speak is
// refused at start-up rather than silently sending nothing.
func TestTracingConfig(t *testing.T) {
	t.Parallel()
	env := productionBase()
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
	env["OTEL_SERVICE_NAME"] = "authql-eu"
	cfg, err := loadWith(env)
	if err != nil {
		t.Fatalf("production with OTEL_* refused: %v", err)
	}
	if !cfg.Tracing {
		t.Errorf("Tracing=false with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	tests := []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{"unset", map[string]string{}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true, ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "http/protobuf"},
		{"zipkin", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "otlp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv, _ := mapEnv(tt.env)
			on, err := tracingFromEnv(getenv)
			if on != tt.on {
				t.Errorf("on=%v, want %v", on, tt.on)
			}
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("err=%v, want one saying %q", err, tt.err)
			}
		})
	}
}
