// Command server runs the authql GraphQL API server.
//
//	server                      serve (configuration from the environment; see -h)
//	server promote-admin EMAIL  make an existing account an ADMIN
//	server demote-admin EMAIL   make an ADMIN an ordinary USER again
//	server gen-key              print a new Ed25519 signing key for APP_JWT_ED25519_KEY
//	server gen-secret           print a new HS256 secret for APP_JWT_SECRET
//	server mails                list the latest mails (without APP_SMTP_URL: the mails logged, with their links)
//	server healthcheck          exit 0 if the server answers /readyz with 200 (container health checks)
//
// It wires the packages of this module together and may import any of
// them; none imports it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Environ, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the operating system:
// getenv reads one variable, environ lists them all (to catch a misspelled
// setting).
func run(ctx context.Context, args []string, getenv func(string) string, environ func() []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "promote-admin":
			return promoteAdmin(ctx, args[1:], getenv, stdout, stderr)
		case "demote-admin":
			return demoteAdmin(ctx, args[1:], getenv, stdout, stderr)
		case "gen-key":
			return genKey(stdout)
		case "gen-secret":
			return genSecret(stdout)
		case "mails":
			return listMails(ctx, args[1:], getenv, stdout, stderr)
		case "healthcheck":
			return healthcheck(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := loadConfig(args, getenv, environ, stderr)
	if err != nil {
		return err
	}
	defer tuneGC(getenv, cfg.GCHeapFloor)()
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	redis.SetLogger(redisLogger{log}) // once per process: go-redis has one logger (log.go)
	// Libraries that write through the standard log package (gqlgen's
	// WebSocket transport) land in the same stream, one record per line.
	slog.SetDefault(log)
	for _, w := range cfg.warnings() {
		log.Warn(w)
	}
	return startAndServe(ctx, cfg, log)
}

// startAndServe takes the ports, then opens the dependencies while the
// listener already answers, and serves until ctx ends.
func startAndServe(ctx context.Context, cfg Config, log *slog.Logger) error {
	ln, mln, err := listen(cfg)
	if err != nil {
		return err
	}
	a, err := prepareApp(ctx, cfg, log, nil)
	if err != nil {
		_ = ln.Close()
		if mln != nil {
			_ = mln.Close()
		}
		return err
	}
	defer a.Close()
	if mln != nil {
		defer a.serveMetrics(mln)()
	}
	// The listener serves from now on: /healthz alive, /readyz 503 and a
	// coded 503 elsewhere until start has opened the database and Redis.
	// A start that fails ends serving as a signal would, and is what run
	// returns; a signal during the start ends it.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan error, 1)
	go func() {
		err := a.start(sctx, deps{})
		if err != nil && ctx.Err() == nil {
			log.Error("start-up failed", slog.Any("error", err))
			stop()
		}
		started <- err
	}()
	serveErr := a.serve(sctx, ln)
	stop()
	startErr := <-started // before a.Close: start may still be opening
	if serveErr != nil {
		return serveErr
	}
	if startErr != nil && ctx.Err() == nil {
		return startErr
	}
	return nil
}

// listen takes the API port and, if metrics are served apart, theirs. It
// runs once the configuration is valid and before anything is opened: a
// port in use fails the start at once, with no database file created and
// no connection made.
func listen(cfg Config) (api, metrics net.Listener, err error) {
	if api, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, nil, fmt.Errorf("APP_ADDR: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if metrics, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = api.Close()
			return nil, nil, fmt.Errorf("APP_METRICS_ADDR: %w", err)
		}
	}
	return api, metrics, nil
}

// serve answers HTTP on ln until ctx ends, then shuts down gracefully:
// /readyz turns not-ready at once, in-flight requests get ShutdownTimeout to
// finish, and only then do the database and Redis close.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       cpuTurns.withTurn,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("listening", slog.String("addr", ln.Addr().String()),
		slog.String("env", a.cfg.Env), slog.Bool("playground", a.cfg.Playground))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Not ready first, still serving: load balancers that probe /readyz
	// stop sending new requests during the grace period.
	a.draining.Store(true)
	if g := a.cfg.ShutdownGrace; g > 0 && a.up.Load() { // never ready: no balancer sends traffic
		a.log.Info("shutting down: not ready, still serving", slog.Duration("grace", g))
		time.Sleep(g)
	}
	a.log.Info("shutting down: draining in-flight requests", slog.Duration("timeout", a.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	// Subscriptions do not drain: their streams end now, without complete,
	// so clients reconnect to another instance (sockets are dropped when
	// the process exits, for the same reason).
	close(a.stopStreams)
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("stopped")
	return nil
}
