package main

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkTracing is an authenticated query and the feed of 100 posts
// (no response tier: resolvers, SQL and Redis run) through the handler,
// with tracing off (no OTLP endpoint: nothing is installed) and on (every
// span made, sampled and handed to a batching exporter that drops it).
// Off is compared with BenchmarkAuth and BenchmarkFeed of the code before
// tracing; see docs/PERFORMANCE.md.
func BenchmarkTracing(b *testing.B) {
	const feed = `{ posts(first: 100) { edges { node { title author { name } } } } }`
	env := map[string]string{"APP_CACHE_RESPONSE_TTL": "0", "APP_DEBUG_COST": "false"}
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			var s *benchServer
			if mode == "on" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
				s = newTracedBenchServer(b, 100, 1, env, tp)
			} else {
				s = newBenchServer(b, 100, 1, env)
			}
			b.Run("me", func(b *testing.B) { s.run(b, s.token, `{ me { id email } }`) })
			b.Run("feed", func(b *testing.B) { s.run(b, s.token, feed) })
		})
	}
}
