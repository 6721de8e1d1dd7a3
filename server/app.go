package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/outbox"
	"github.com/authql/authql/graph"
)

// app is one running server: its dependencies and its HTTP handler.
type app struct {
	cfg      Config
	log      *slog.Logger
	logs     streams
	metrics  *metrics
	registry *prometheus.Registry
	db       *entdb.DB
	rdb      redis.UniversalClient
	// cacheRdb holds the cache tiers and persisted queries: rdb, or the
	// Redis of APP_CACHE_REDIS_URL.
	cacheRdb redis.UniversalClient
	// admission queues requests for the CPU (nil: no limit).
	admission *admission
	sessions  *auth.Sessions
	bus       *bus.Bus
	// handler is front: the start-up handler until the dependencies are
	// open, the application's from then on.
	handler http.Handler
	front   switchHandler
	// up is set once the application's handler serves.
	up atomic.Bool
	// draining turns /readyz not-ready when shutdown begins, so a load
	// balancer stops sending new requests before connections are drained.
	draining atomic.Bool
	// stopStreams, closed when the server stops, ends the subscriptions'
	// event streams: http.Server.Shutdown waits for every response, and a
	// stream would hold it for ShutdownTimeout.
	stopStreams chan struct{}
	closers     []func()
	// tracer is the OpenTelemetry provider; nil when tracing is off.
	tracer trace.TracerProvider
	// prune deletes the rows no request can use any more (pruneExpired
	// runs it every pruneInterval).
	prune func(context.Context)
}

// streams are the loggers of the log streams (see log.go).
type streams struct{ auth, api, err, perf *slog.Logger }

func newStreams(log *slog.Logger) streams {
	with := func(name string) *slog.Logger { return log.With(slog.String("stream", name)) }
	return streams{auth: with(streamAuth), api: with(streamAPI), err: with(streamError), perf: with(streamPerf)}
}

// deps lets tests inject what the environment would otherwise decide.
type deps struct {
	now func() time.Time
	// rdb, if set, is used instead of opening Redis from the configuration.
	rdb redis.UniversalClient
	// cacheRdb, if set, is used for the cache tiers and persisted queries
	// instead of APP_CACHE_REDIS_URL (or rdb).
	cacheRdb redis.UniversalClient
	// onHashSlot, if set, sees every password-hashing slot taken (see
	// auth.PasswordOptions.OnAcquire).
	onHashSlot func(held int)
	// tracer, if set, is used instead of the OTLP exporter the
	// environment configures.
	tracer trace.TracerProvider
	// beforeCommit runs in every write of posts or users just before its
	// commit (graph.Deps.BeforeCommit).
	beforeCommit func(ctx context.Context)
}

// newApp opens the database (migrating it) and Redis, and builds the
// handler: it returns an application that serves. Each embedded default is
// announced once, with how to replace it.
func newApp(ctx context.Context, cfg Config, log *slog.Logger, d deps) (*app, error) {
	a, err := prepareApp(ctx, cfg, log, d.tracer)
	if err != nil {
		return nil, err
	}
	if err := a.start(ctx, d); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// prepareApp builds what needs neither the database nor Redis: the metrics,
// the tracer (tp, or the environment's when tracing is on), and a handler
// that answers while they come up (startingRoutes).
func prepareApp(ctx context.Context, cfg Config, log *slog.Logger, tp trace.TracerProvider) (*app, error) {
	a := &app{cfg: cfg, log: log, logs: newStreams(log), registry: prometheus.NewRegistry(), tracer: tp, stopStreams: make(chan struct{})}
	switch {
	case cfg.MaxRunning == 0:
		a.admission = newAdmission(runtime.GOMAXPROCS(0) + 1)
	case cfg.MaxRunning > 0:
		a.admission = newAdmission(cfg.MaxRunning)
	}
	var err error
	if a.metrics, err = newMetrics(a.registry); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if a.admission != nil {
		if err := registerAll(a.registry, a.admission.collectors()...); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	if tp == nil && cfg.Tracing {
		sdk, err := newTracerProvider(ctx)
		if err != nil {
			return nil, err
		}
		// The first closer runs last: spans of the shutdown are flushed too.
		a.closers = append(a.closers, shutdownTracing(sdk))
		a.tracer = sdk
		log.Info("tracing: exporting spans over OTLP (OTEL_EXPORTER_OTLP_*)")
	}
	a.front.set(a.startingRoutes())
	a.handler = &a.front
	logFileLimit(log)
	return a, nil
}

// start opens the dependencies (waiting for those not up yet, see
// openDeps), builds the application on them and switches the handler to
// it. On error, Close releases what it opened.
func (a *app) start(ctx context.Context, d deps) error {
	cfg, log := a.cfg, a.log
	if d.now == nil {
		d.now = time.Now
	}
	trusted, err := loadTrustedDocuments(cfg.TrustedDocuments, log)
	if err != nil {
		return err
	}
	if err := a.openDeps(ctx, d); err != nil {
		return err
	}
	tokens, err := a.tokens(d.now)
	if err != nil {
		return err
	}
	// One bus per process, on the main Redis: revocations and user-record
	// evictions reach every instance through it. The cache tiers publish
	// their evictions on it too; only their entries live in cacheRdb.
	a.bus = bus.New(a.rdb, cfg.RedisPrefix, log)
	if err := watch(a.registry, a.rdb, a.db, a.bus); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	trail := auth.NewTrail(a.db.Client, d.now)
	a.sessions = auth.NewSessions(a.rdb, a.bus, tokens, auth.SessionConfig{
		Prefix:      cfg.RedisPrefix,
		IdleTimeout: cfg.SessionIdle,
		RefreshTTL:  cfg.RefreshTTL,
		ReuseGrace:  cfg.RefreshGrace,
		Now:         d.now,
		Log:         a.logs.auth,
		Observer:    a.metrics,
		MaxSessions: cfg.MaxSessions,
		Ledger:      auth.NewLedger(a.db.Client),
		Trail:       trail,
	})
	// Every instance delivers what writes left in the outbox (theirs or a
	// dead instance's), at once when its bus resyncs: Redis is back.
	ob := outbox.New(a.db.Client, a.db.Dialect, outbox.Config{Log: a.logs.err})
	mailer, err := mail.New(a.db.Client, mail.Config{PublicURL: cfg.PublicURL, From: cfg.MailFrom, SMTPURL: cfg.SMTPURL, Log: a.logs.auth, Now: d.now})
	if err != nil {
		return fmt.Errorf("APP_SMTP_URL: %w", err)
	}
	mailer.Handle(ob)
	if cfg.SMTPURL == "" {
		log.Warn("APP_SMTP_URL is not set: mails are written to the auth log stream and listed by `server mails`, not sent")
	}
	a.bus.OnSync(func(context.Context) error { ob.Kick(); return nil })
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan struct{})
	go func() { defer close(bgDone); a.sessions.Run(bg) }()
	busDone := make(chan struct{})
	go func() { defer close(busDone); a.bus.Run(bg) }()
	a.closers = append(a.closers, func() { stopBG(); <-busDone })
	a.closers = append(a.closers, func() { stopBG(); <-bgDone })

	tiersCfg := cfg.Cache
	tiersCfg.Prefix, tiersCfg.Log, tiersCfg.Observer = cfg.RedisPrefix, a.logs.err, a.metrics
	passwords := auth.NewPasswords(auth.Argon2Params{Memory: cfg.PasswordMemoryKiB, Time: cfg.PasswordTime, Threads: 1},
		auth.PasswordOptions{Concurrency: cfg.HashConcurrency, Wait: cfg.HashWait, OnAcquire: d.onHashSlot})
	gql := graph.NewHandler(graph.Deps{
		Tiers:     cache.NewTiers(a.cacheRdb, a.bus, tiersCfg),
		Bus:       a.bus,
		Ent:       a.db.Client,
		Dialect:   a.db.Dialect,
		Sessions:  a.sessions,
		Passwords: passwords,
		Limiter:   auth.NewLimiter(a.rdb, cfg.RedisPrefix, cfg.RateLimits, d.now, a.logs.auth, a.metrics),
		Outbox:    ob,
		Log:       a.logs.err,
		MFA: graph.MFADeps{
			Challenges: auth.NewChallenges(a.rdb, cfg.RedisPrefix, d.now),
			Sealer:     sealer,
			Issuer:     cfg.JWTIssuer,
		},
		Trail: trail,

		RequireVerifiedEmail: cfg.RequireVerifiedEmail,

		BeforeCommit: d.beforeCommit,
	}, graph.Options{
		Introspection:    cfg.Introspection,
		Suggestions:      !cfg.Production(),
		Limits:           cfg.Limits,
		DebugCost:        cfg.DebugCost,
		PersistedQueries: cache.NewPersistedQueries(a.cacheRdb, cfg.RedisPrefix, 24*time.Hour, a.logs.err, a.metrics),
		TrustedDocuments: trusted,
		WebSocket:        a.websocketOptions(),
		StopStreams:      a.stopStreams,
		Observe:          a.observeOperation,
		Tracer:           a.tracer,
		LiveStats:        &a.metrics.live,
	})
	a.front.set(a.routes(gql))
	obDone := make(chan struct{}) // started once the handler registered its kinds
	go func() { defer close(obDone); ob.Run(bg) }()
	a.closers = append(a.closers, func() { stopBG(); <-obDone })
	a.prune = func(ctx context.Context) {
		if _, err := graph.PruneAccountTokens(ctx, a.db.Client, d.now()); err != nil && ctx.Err() == nil {
			a.logs.err.WarnContext(ctx, "prune expired account tokens", slog.Any("error", err))
		}
		if _, err := mailer.Prune(ctx); err != nil && ctx.Err() == nil {
			a.logs.err.WarnContext(ctx, "prune sent-mail records", slog.Any("error", err))
		}
	}
	pruneDone := make(chan struct{})
	go func() { defer close(pruneDone); pruneExpired(bg, a.prune) }()
	a.closers = append(a.closers, func() { stopBG(); <-pruneDone })
	a.up.Store(true)
	log.Info("ready: serving the API")
	return nil
}

// pruneInterval is how often an instance deletes the rows no request can
// use any more. Every instance does; the deletes are idempotent and go by
// an index.
const pruneInterval = time.Hour

// pruneExpired runs prune every pruneInterval until ctx ends: expired
// account tokens, and sent-mail records past mail.SentRetention, would
// otherwise grow their tables for ever.
func pruneExpired(ctx context.Context, prune func(context.Context)) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			prune(ctx)
		}
	}
}

// tokens builds the access token service. The signing key is the Ed25519
// key if one is configured, else the HMAC secret; every other configured key
// still verifies (rotation: deploy the new key as signer with the old one
// listed for verification, and drop the old one after one access-token
// lifetime). In development without any key it generates an HMAC secret and
// says what that means.
func (a *app) tokens(now func() time.Time) (*auth.Tokens, error) {
	cfg := a.cfg
	var signing auth.Key
	var verify []auth.Key
	secret := cfg.JWTSecret
	if secret == "" && cfg.JWTEd25519Key == "" {
		if cfg.Production() {
			return nil, errors.New("no signing key") // validate() already refused this
		}
		secret = rand.Text() + rand.Text() // 2 × 130 bits
		a.log.Warn("APP_JWT_SECRET is not set: signing with a random development key; tokens stop working when the process restarts and are not shared with other instances")
	}
	if cfg.JWTEd25519Key != "" {
		priv, err := auth.ParseEd25519Private(cfg.JWTEd25519Key)
		if err != nil {
			return nil, err
		}
		signing = auth.Ed25519Key(priv)
		if secret != "" {
			verify = append(verify, auth.HMACKey([]byte(secret)).VerifyOnly())
		}
	} else {
		signing = auth.HMACKey([]byte(secret))
	}
	for _, s := range cfg.JWTVerifySecrets {
		verify = append(verify, auth.HMACKey([]byte(s)).VerifyOnly())
	}
	for _, s := range cfg.JWTEd25519Verify {
		pub, err := auth.ParseEd25519Public(s)
		if err != nil {
			return nil, err
		}
		verify = append(verify, auth.Ed25519PublicKey(pub))
	}
	return auth.NewTokens(auth.TokenConfig{
		Issuer:   cfg.JWTIssuer,
		Audience: cfg.JWTAudience,
		TTL:      cfg.AccessTTL,
		Leeway:   cfg.JWTLeeway,
		Signing:  signing,
		Verify:   verify,
		Now:      now,
	})
}

// devEncryptionKey seals secrets at rest in development when
// APP_ENCRYPTION_KEY is not set. It is public (it is in the source), so
// production refuses to start without a key of its own; unlike the random
// development signing key it is fixed, so what a development database
// holds stays readable across restarts.
const devEncryptionKey = "authql development encryption key: public, never for production"

// sealer builds what encrypts secrets kept in the database.
func (a *app) sealer() (*auth.Sealer, error) {
	key := a.cfg.EncryptionKey
	if key == "" {
		key = devEncryptionKey
		a.log.Warn("APP_ENCRYPTION_KEY is not set: TOTP secrets are encrypted with the public development key; set one (server gen-secret) before storing real ones")
	}
	return auth.NewSealer([]byte(key))
}

// Close releases everything newApp opened, in reverse order.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// ready reports whether the database and Redis answer.
func (a *app) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := a.db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// websocketOptions are the configured limits, with the browser origins
// allowed to open sockets: those of APP_CORS_ORIGINS, or in development
// without a list any localhost origin (as CORS).
func (a *app) websocketOptions() graph.WebSocketOptions {
	o := a.cfg.WebSocket
	for _, origin := range a.cfg.CORSOrigins {
		if u, err := url.Parse(origin); err == nil && u.Host != "" {
			o.OriginPatterns = append(o.OriginPatterns, u.Host)
		}
	}
	if len(a.cfg.CORSOrigins) == 0 && !a.cfg.Production() {
		o.OriginPatterns = []string{"localhost:*", "127.0.0.1:*", "[::1]:*"}
	}
	return o
}
