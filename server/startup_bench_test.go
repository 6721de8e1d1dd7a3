package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// What the start-up switch costs each request once the application serves:
//
//	go test -run '^$' -bench SwitchHandler -benchtime 20000000x ./server
func BenchmarkSwitchHandler(b *testing.B) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	var s switchHandler
	s.set(h)
	req := httptest.NewRequest(http.MethodGet, "/query", nil)
	w := httptest.NewRecorder()
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
	b.Run("switched", func(b *testing.B) {
		for b.Loop() {
			s.ServeHTTP(w, req)
		}
	})
}
