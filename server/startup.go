package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/graph"
)

// The listener serves before the database and Redis answer: an
// orchestrator that starts the server with its dependencies sees a live
// process that is not ready yet, rather than one that exits and is
// restarted in a loop. The start-up handler answers until then; the
// application's replaces it once they are open.

// switchHandler serves through the handler stored last. The request path
// pays one atomic load for it.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// startingRoutes answers while the dependencies are being opened: the
// process is alive (/healthz), not ready (/readyz 503), and what the
// application will serve is a coded 503 that says to retry
// (SERVICE_UNAVAILABLE, Retry-After), as when Redis or the database goes
// away later. What it will not serve is a 404 already.
func (a *app) startingRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
	})
	if a.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", metricsHandler(a.registry, a.log))
	}
	starting := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeError(w, r, graph.CodeServiceUnavailable,
			"the server is starting: the database or Redis is not reachable yet; retry shortly")
	}
	mux.HandleFunc("/query", starting)
	mux.HandleFunc("GET /.well-known/jwks.json", starting)
	if a.cfg.Playground {
		mux.HandleFunc("GET /{$}", starting)
	}
	return a.around(mux)
}

// errStartupTimeout ends the wait for the dependencies.
var errStartupTimeout = errors.New("APP_STARTUP_TIMEOUT passed")

// openDeps opens the database (migrating it), the main Redis and the cache
// Redis, in that order. One that does not answer yet is retried with
// backoff until APP_STARTUP_TIMEOUT has passed since the start; then the
// start fails with the last error. A failure that waiting cannot cure (a
// refused password, a file that cannot be created) fails it at once.
func (a *app) openDeps(ctx context.Context, d deps) error {
	wctx, cancel := context.WithTimeoutCause(ctx, a.cfg.StartupTimeout, errStartupTimeout)
	defer cancel()
	if err := a.openDatabase(wctx, ctx); err != nil {
		return err
	}
	a.rdb = d.rdb
	if a.rdb == nil {
		rdb, err := a.openRedis(wctx)
		if err != nil {
			return err
		}
		a.rdb = rdb
		a.closers = append(a.closers, func() { _ = rdb.Close() })
	}
	a.rdb.AddHook(cost.Hook{})
	if err := a.traceRedis(a.rdb); err != nil {
		return err
	}
	a.warnIfEvicting(ctx)
	var err error
	if a.cacheRdb, err = a.openCacheRedis(wctx, d.cacheRdb); err != nil {
		return err
	}
	if a.cacheRdb != a.rdb {
		return a.traceRedis(a.cacheRdb)
	}
	return nil
}

// openDatabase connects to the database within wctx and migrates it
// within ctx: a migration may wait for another instance's (PostgreSQL
// advisory lock), and is not cut half-way by the start-up timeout.
func (a *app) openDatabase(wctx, ctx context.Context) error {
	dsn := a.cfg.DatabaseURL
	if dsn == "" {
		dsn = DefaultSQLitePath
		a.log.Info("using the embedded SQLite database; set DATABASE_URL=postgres://... for PostgreSQL", slog.String("path", dsn))
	}
	pool := entdb.Pool{MaxOpenConns: a.cfg.DBMaxOpen, MaxIdleConns: a.cfg.DBMaxIdle, ConnMaxIdleTime: a.cfg.DBMaxIdleTime}
	var opts []entdb.Option
	if a.tracer != nil {
		opts = append(opts, entdb.WithTracing(childSpansOnly{tp: a.tracer}))
	}
	err := a.retry(wctx, "database", entdb.IsUnavailable, func(wctx context.Context) error {
		db, err := entdb.Open(wctx, dsn, pool, cost.CountSQL, opts...)
		if err != nil {
			return err
		}
		if err := db.Migrate(ctx); err != nil {
			_ = db.Close()
			return err
		}
		a.db = db
		return nil
	})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() { _ = a.db.Close() })
	a.log.Info("database ready", slog.String("database", a.db.Describe))
	return nil
}

// openRedis opens the main Redis: the configured one, waiting for it, or
// an embedded one.
func (a *app) openRedis(ctx context.Context) (redis.UniversalClient, error) {
	c := a.cfg.mainRedis()
	if a.cfg.EmbeddedRedis() {
		m, stop, err := embeddedRedis(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		a.closers = append(a.closers, stop)
		a.log.Info("using the embedded in-process Redis; set REDIS_URL=redis://... for a real one (sessions then survive restarts and are shared by instances)",
			slog.String("addr", m.Addr()))
		c = rdb.Config{URL: "redis://" + m.Addr(), Timeout: a.cfg.RedisTimeout}
	}
	var client redis.UniversalClient
	err := a.retry(ctx, "redis", redisTransient, func(ctx context.Context) (err error) {
		client, err = rdb.Open(ctx, c)
		return err
	})
	return client, err
}

// retry calls attempt until it succeeds, fails in a way transient says
// will not pass, or ctx ends. It waits between attempts, doubling the wait
// from 100ms up to 5s (with jitter: instances started together do not
// knock in step), and logs each failure with what it waits for.
func (a *app) retry(ctx context.Context, what string, transient func(error) bool, attempt func(context.Context) error) error {
	wait := 100 * time.Millisecond
	var last error
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			if n > 1 {
				a.log.Info(what+" reachable", slog.Int("attempts", n))
			}
			return nil
		}
		if ctx.Err() == nil || last == nil {
			// An attempt cut by the deadline says less than the one before.
			last = err
		}
		if ctx.Err() != nil {
			return a.waitEnded(ctx, what, last)
		}
		if !transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		d := wait/2 + rand.N(wait/2+1)
		a.log.Warn(what+" not reachable yet; retrying", slog.Any("error", err),
			slog.Int("attempt", n), slog.Duration("retry_in", d))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return a.waitEnded(ctx, what, last)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// waitEnded is the error of a wait cut short: by the start-up timeout, or
// by the end of the program (a signal), which is no failure.
func (a *app) waitEnded(ctx context.Context, what string, last error) error {
	if errors.Is(context.Cause(ctx), errStartupTimeout) {
		return fmt.Errorf("%s not reachable within APP_STARTUP_TIMEOUT (%s): %w", what, shortDuration(a.cfg.StartupTimeout), last)
	}
	return fmt.Errorf("start-up interrupted while waiting for %s: %w", what, context.Cause(ctx))
}
