package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthcheck runs `server healthcheck` against a server that is ready,
// then not: exit status 0 (nil) only for a 200.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	ready.Store(true)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ts.Close)
	check := func(args ...string) error {
		return runWith(context.Background(), append([]string{"healthcheck"}, args...), nil, io.Discard, io.Discard)
	}

	if err := check("-url", ts.URL+"/readyz"); err != nil {
		t.Fatalf("ready server: healthcheck=%v, want nil", err)
	}
	ready.Store(false)
	if err := check("-url", ts.URL+"/readyz"); err == nil {
		t.Fatal("503: healthcheck=nil, want an error")
	}
	if err := check("-url", ts.URL+"/elsewhere"); err == nil {
		t.Fatal("404: healthcheck=nil, want an error")
	}
}

// TestHealthcheckUnreachable fails when nothing answers in time: a refused
// connection, and a server that hangs past the timeout.
func TestHealthcheckUnreachable(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })

	for name, args := range map[string][]string{
		"refused": {"-url", closed.URL + "/readyz"},
		"timeout": {"-url", slow.URL + "/readyz", "-timeout", "100ms"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := runWith(context.Background(), append([]string{"healthcheck"}, args...), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("healthcheck=nil, want an error")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v, want it to give up at the timeout", d)
			}
		})
	}
}
