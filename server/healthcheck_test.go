package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestHealthcheckFollowsAPPADDR asks the port the server listens on when no
// -url is given: the one in APP_ADDR, on loopback if APP_ADDR names no host.
func TestHealthcheckFollowsAPPADDR(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		asked.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ts.Close)
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	check := func(appAddr string, args ...string) error {
		return runWith(context.Background(), append([]string{"healthcheck"}, args...),
			map[string]string{"APP_ADDR": appAddr}, io.Discard, io.Discard)
	}

	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "127.0.0.1:" + port} {
		t.Run(addr, func(t *testing.T) {
			before := asked.Load()
			if err := check(addr); err != nil {
				t.Fatalf("APP_ADDR=%s: healthcheck=%v, want nil", addr, err)
			}
			if asked.Load() == before {
				t.Fatalf("APP_ADDR=%s: the server on that port was not asked", addr)
			}
		})
	}
	t.Run("-url wins", func(t *testing.T) {
		if err := check(":1", "-url", ts.URL+"/readyz"); err != nil {
			t.Fatalf("healthcheck=%v, want nil", err)
		}
	})
	t.Run("no port", func(t *testing.T) {
		err := check("localhost")
		if err == nil || !strings.Contains(err.Error(), "APP_ADDR") {
			t.Fatalf("healthcheck=%v, want an error naming APP_ADDR", err)
		}
	})
}
