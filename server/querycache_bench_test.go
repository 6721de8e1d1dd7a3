package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkDistinctLargeQueries sends 200 distinct valid queries of about
// 60 KB each (and 2,000 for the longer run, skipped with -short) and
// reports the heap they leave behind once collected: what the parsed-query
// and persisted-query caches keep. Two shapes: one huge operation name (one
// token, a small tree), and 1,000 long aliases (a large tree). The timed
// loop then sends them again, one query per iteration:
//
//	go test ./server -run '^$' -bench DistinctLargeQueries -benchtime 1x
func BenchmarkDistinctLargeQueries(b *testing.B) {
	shapes := map[string]func(i int) string{
		"name": func(i int) string { return namedQuery(60_000, fmt.Sprint(i, "_")) },
		"aliases": func(i int) string {
			var q strings.Builder
			fmt.Fprintf(&q, "query A%d {", i)
			for j := range 1000 {
				fmt.Fprintf(&q, " a%06d_%06d_%s: __typename", i, j, strings.Repeat("x", 36))
			}
			q.WriteString(" }")
			return q.String()
		},
	}
	for _, shape := range []string{"name", "aliases"} {
		for _, n := range []int{200, 2000} {
			if n > 200 && testing.Short() {
				continue
			}
			b.Run(fmt.Sprintf("%s/%d", shape, n), func(b *testing.B) {
				// Responses are cached in Redis, here in-process (miniredis):
				// off, so that only the server's own memory is measured.
				s := newBenchServer(b, 0, 0, map[string]string{"APP_CACHE_RESPONSE_TTL": "0"})
				queries := make([]string, n)
				for i := range queries {
					queries[i] = shapes[shape](i)
				}
				for _, q := range []string{queries[0], queries[n-1]} {
					if res := s.send(q); res != "" {
						b.Fatalf("a query of %d bytes is refused: %.300s", len(q), res)
					}
				}
				before := heapInUse()
				for _, q := range queries {
					if res := s.send(q); res != "" {
						b.Fatalf("a query of %d bytes is refused: %.300s", len(q), res)
					}
				}
				retained := float64(heapInUse()-before) / (1 << 20)
				b.ResetTimer()
				for i := range b.N {
					if res := s.send(queries[i%n]); res != "" {
						b.Fatalf("a query of %d bytes is refused: %.300s", len(queries[i%n]), res)
					}
				}
				b.StopTimer()
				b.ReportMetric(retained, "retained-MB")
				b.ReportMetric(float64(len(queries[0]))/1000, "query-KB")
				runtime.KeepAlive(s)
			})
		}
	}
}

// send runs a query as the benchmark's user; it returns the response if it
// is not a success (the query is too long to print).
func (s *benchServer) send(query string) string {
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.RemoteAddr = "127.0.0.1:1234"
	rec := httptest.NewRecorder()
	s.app.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
		return fmt.Sprint(rec.Code, " ", rec.Body.String())
	}
	return ""
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
