package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Tracing is OpenTelemetry's, exported over OTLP/HTTP and configured by
// the standard OTEL_* variables, which the SDK reads itself
// (docs/OPERATIONS.md, "Traces"). It is on when an OTLP endpoint is set,
// and off otherwise: then no middleware, hook or driver wrapper is
// installed, and the request path runs exactly as without tracing.

// tracingFromEnv reports whether the environment asks for traces: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The exporter
// speaks OTLP over HTTP (protobuf) only: another protocol asked for is an
// error rather than silence.
func tracingFromEnv(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
	case "none":
		return false, nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER: only otlp (or none) is supported, not %q", e)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(k)); p != "" && p != "http/protobuf" {
			return false, fmt.Errorf("%s: only http/protobuf is supported, not %q (an OTLP collector listens for it on port 4318)", k, p)
		}
	}
	return true, nil
}

// serviceName names the service in traces unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const serviceName = "authql"

// newTracerProvider returns the SDK's provider with a batching OTLP/HTTP
// exporter. The exporter reads the endpoint, headers, timeout, TLS and
// compression from OTEL_EXPORTER_OTLP_*; the provider its sampler
// (OTEL_TRACES_SAMPLER, default parent-based always-on) and batch sizes
// (OTEL_BSP_*); the resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
// Nothing is dialled here: spans are sent in the background, and a
// collector that is down costs dropped spans, never a request.
func newTracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later detectors win: the environment overrides the default name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// shutdownTracing flushes the spans still batched, within a bound: a
// collector that does not answer must not hold up the shutdown.
func shutdownTracing(tp *sdktrace.TracerProvider) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}
}

// childSpansOnly wraps the provider given to the SQL and Redis
// instrumentation: a statement or command starts a span only inside a
// trace. Background work (the bus's heartbeats and leases, the outbox,
// migrations) would otherwise start a trace of its own for every command,
// drowning the requests' traces.
type childSpansOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (c childSpansOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: c.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (c childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a non-recording span
	}
	return c.t.Start(ctx, name, opts...)
}

// traceHTTP starts a span for every request but the probes, /metrics and
// WebSocket upgrades (a socket lives for hours; each subscription event
// gets a trace of its own). A W3C traceparent sent with the request
// continues the caller's trace: in development from anyone, in production
// only from a trusted proxy (APP_TRUSTED_PROXIES), since a client that
// picks its own trace id could mix its requests into someone else's
// trace. With tracing off it returns next itself.
func (a *app) traceHTTP(next http.Handler) http.Handler {
	if a.tracer == nil {
		return next
	}
	h := otelhttp.NewHandler(next, "http",
		otelhttp.WithTracerProvider(a.tracer),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(httpSpanName),
		otelhttp.WithFilter(traced))
	if !a.cfg.Production() {
		return h
	}
	px := proxies{a.cfg.TrustedProxies}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := peer(r); !ok || !px.isTrusted(p) {
			r.Header.Del("Traceparent")
			r.Header.Del("Tracestate")
		}
		h.ServeHTTP(w, r)
	})
}

// traced reports whether a request gets a span.
func traced(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	return !isWebSocket(r)
}

// httpSpanName is the method and the route; a path no route serves is
// not named (a scanner's paths would each make a span name).
func httpSpanName(_ string, r *http.Request) string {
	switch p := r.URL.Path; {
	case p == "/query", p == "/", p == "/.well-known/jwks.json":
		return r.Method + " " + p
	case strings.HasPrefix(p, "/playground/"):
		return r.Method + " /playground/"
	}
	return r.Method
}

// traceRedis gives every command of c a span (go-redis's redisotel), named
// after the command. Its arguments are not recorded: keys name sessions
// and tokens, values hold them.
func (a *app) traceRedis(c redis.UniversalClient) error {
	if a.tracer == nil {
		return nil
	}
	opts := []redisotel.TracingOption{
		redisotel.WithTracerProvider(childSpansOnly{tp: a.tracer}),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
	}
	if err := redisotel.InstrumentTracing(c, opts...); err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	// On a cluster, redisotel instruments the nodes connected from now
	// on; those the start-up's PING already reached are instrumented here.
	if cc, ok := c.(*redis.ClusterClient); ok {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RedisTimeout+time.Second)
		defer cancel()
		return cc.ForEachShard(ctx, func(_ context.Context, shard *redis.Client) error {
			return redisotel.InstrumentTracing(shard, opts...)
		})
	}
	return nil
}
