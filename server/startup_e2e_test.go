package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// untouched is a database path and a Redis that a refused start must leave
// alone: the directory of the SQLite file must not be created, and the
// Redis must see no connection.
type untouched struct {
	dir   string
	redis *miniredis.Miniredis
}

func newUntouched(t *testing.T) untouched {
	t.Helper()
	return untouched{dir: filepath.Join(t.TempDir(), "db"), redis: miniredis.RunT(t)}
}

// env is a development configuration on them.
func (u untouched) env() map[string]string {
	return map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(u.dir, "app.db"),
		"REDIS_URL": "redis://" + u.redis.Addr(), "APP_ADDR": "127.0.0.1:0"}
}

func (u untouched) check(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(u.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the database directory exists (stat: %v)", err)
	}
	if n := u.redis.TotalConnectionCount(); n != 0 {
		t.Errorf("Redis saw %d connections, want 0", n)
	}
}

// runBriefly runs the program with env, for a start that must fail: if it
// starts instead, it is stopped after a while (and returns nil).
func runBriefly(t *testing.T, env map[string]string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return runWith(ctx, nil, env, io.Discard, io.Discard)
}

// A configuration that is refused leaves no trace: no database file or
// directory, no Redis connection. An out-of-range port used to be noticed
// only by net.Listen, after both had been opened.
func TestRunRefusedConfigTouchesNothing(t *testing.T) {
	for _, tc := range []struct{ env, value string }{
		{"APP_ADDR", ":99999"},
		{"APP_METRICS_ADDR", "127.0.0.1:99999"},
		{"APP_LOG_LEVEL", "verbose"},
		{"APP_CORS_ORIGINS", "https://app.example.com/"},
		{"APP_WS_PING_INTERVAL", "-25s"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			u := newUntouched(t)
			env := u.env()
			env[tc.env] = tc.value
			err := runBriefly(t, env)
			if err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("run with %s=%s: err=%v, want a refusal naming %s", tc.env, tc.value, err, tc.env)
			}
			u.check(t)
		})
	}
}

// The ports are taken before anything is opened: a port in use fails the
// start with nothing created and no connection made.
func TestRunPortInUseTouchesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	for _, name := range []string{"APP_ADDR", "APP_METRICS_ADDR"} {
		t.Run(name, func(t *testing.T) {
			u := newUntouched(t)
			env := u.env()
			env[name] = taken.Addr().String()
			err := runBriefly(t, env)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "in use") {
				t.Fatalf("run with %s on a taken port: err=%v", name, err)
			}
			u.check(t)
		})
	}
}
