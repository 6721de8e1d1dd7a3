package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/graph"
)

// metrics are the Prometheus metrics of one app, registered on the registry
// newApp creates (never the global one). They implement auth.Observer and
// cache.Observer, so those packages count without knowing Prometheus.
// docs/OPERATIONS.md ("Metrics") lists them.
type metrics struct {
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
	aborted      prometheus.Counter
	opDuration   *prometheus.HistogramVec
	responses    *prometheus.CounterVec
	issued       prometheus.Counter
	verified     *prometheus.CounterVec
	reuse        prometheus.Counter
	rateLimited  *prometheus.CounterVec
	cache        *prometheus.CounterVec
	subStarted   *prometheus.CounterVec
	subLifetime  *prometheus.HistogramVec
	names        opNames
	// live is kept by the WebSocket transport and read at scrape time.
	live graph.LiveStats

	// The series counted on every request, looked up once: a labelled
	// lookup hashes its label values each time.
	verifiedBy map[string]prometheus.Counter    // by result
	cacheBy    map[string][2]prometheus.Counter // by tier: miss, hit
	responseOK prometheus.Counter
}

var (
	_ auth.Observer  = (*metrics)(nil)
	_ cache.Observer = (*metrics)(nil)
)

// newMetrics registers the application's metrics on reg, with the process
// and Go runtime collectors. Series whose labels are known in advance start
// at zero, so rates and ratios exist before the first event.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "authql", Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "status"}),
		httpInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "authql", Name: "http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authql", Name: "http_requests_aborted_total",
			Help: "HTTP requests whose client went away before the answer (not errors of ours).",
		}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "authql", Name: "graphql_operation_duration_seconds",
			Help:    "Time from the start of a GraphQL request to its response, by operation name and type.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authql", Name: "graphql_responses_total",
			Help: "GraphQL responses by extensions.code of their errors (each distinct code once per response); OK for none.",
		}, []string{"code"}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authql", Name: "jwt_issued_total",
			Help: "Access tokens issued (login, sign-up, refresh, password change).",
		}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authql", Name: "jwt_verified_total",
			Help: "Access tokens presented, by result: ok, expired, invalid, revoked, unavailable (Redis could not be asked).",
		}, []string{"result"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "authql", Name: "refresh_reuse_detected_total",
			Help: "Rotated refresh tokens presented after the grace window (theft: the session was revoked).",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authql", Name: "rate_limited_total",
			Help: "Requests refused by a rate limit, by scope: login, register, api.",
		}, []string{"scope"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authql", Name: "cache_lookups_total",
			Help: "Cache lookups by tier and result (hit or miss); a batch of n entries is n lookups.",
		}, []string{"tier", "result"}),
		subStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "authql", Name: "subscriptions_started_total",
			Help: "Subscriptions started, by operation name.",
		}, []string{"operation"}),
		subLifetime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "authql", Name: "subscription_lifetime_seconds",
			Help:    "How long ended subscriptions ran, by operation name.",
			Buckets: []float64{1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"operation"}),
		names: opNames{max: maxOperationNames},
	}
	m.verifiedBy = map[string]prometheus.Counter{}
	for _, r := range auth.VerifyResults() {
		m.verifiedBy[r] = m.verified.WithLabelValues(r)
	}
	for _, s := range auth.RateLimitScopes() {
		m.rateLimited.WithLabelValues(string(s))
	}
	m.cacheBy = map[string][2]prometheus.Counter{}
	for _, t := range cache.TierNames() {
		m.cacheBy[t] = [2]prometheus.Counter{m.cache.WithLabelValues(t, "miss"), m.cache.WithLabelValues(t, "hit")}
	}
	m.responseOK = m.responses.WithLabelValues("OK")
	return m, registerAll(reg,
		m.httpDuration, m.httpInFlight, m.aborted, m.opDuration, m.responses,
		m.issued, m.verified, m.reuse, m.rateLimited, m.cache,
		m.subStarted, m.subLifetime,
		liveGauge("websockets_open", "Authenticated live connections open on this instance: WebSockets and subscriptions' event streams (SSE).", &m.live.Sockets),
		liveGauge("subscriptions_active", "Subscriptions running on this instance.", &m.live.Subscriptions),
		liveGauge("subscription_groups", "Distinct (document, variables, visibility) groups of subscriptions: each event is resolved once per group.", &m.live.Groups),
		liveCounter("subscription_resolutions_total", "Subscription events resolved (once per group, whatever its size).", &m.live.Resolutions),
		liveCounter("subscription_deliveries_total", "Subscription event messages queued to sockets and event streams.", &m.live.Delivered),
		liveCounter("websockets_slow_closed_total", "WebSockets closed with 4413, and event streams ended, because their writes backed up.", &m.live.SlowClosed),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// watch registers the collectors that read the app's dependencies at
// scrape time: Redis (reachability and pool), the database pool, the bus.
func watch(reg prometheus.Registerer, rdb redis.UniversalClient, db *entdb.DB, bus *bus.Bus) error {
	return registerAll(reg,
		newRedisCollector(rdb),
		collectors.NewDBStatsCollector(db.SQL, "authql"),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "authql", Name: "db_connections_opened_total",
			Help: "Database connections the pool has opened; flat under a steady load once the pool is warm.",
		}, func() float64 { return float64(db.ConnectionsOpened()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "authql", Name: "bus_synced",
			Help: "1 while this process's revocation and user-cache bus is synced (authentication answers from memory), else 0.",
		}, func() float64 { return boolFloat(bus.Synced()) }),
	)
}

func liveGauge(name, help string, v interface{ Load() int64 }) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "authql", Name: name, Help: help},
		func() float64 { return float64(v.Load()) })
}

func liveCounter(name, help string, v interface{ Load() int64 }) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "authql", Name: name, Help: help},
		func() float64 { return float64(v.Load()) })
}

// subscription counts a subscription when it starts, and observes its
// lifetime when it ends.
func (m *metrics) subscription(op graph.Operation) {
	name := m.names.label(op.Name)
	if op.Subscription == "started" {
		m.subStarted.WithLabelValues(name).Inc()
		return
	}
	m.subLifetime.WithLabelValues(name).Observe(op.Duration.Seconds())
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TokenIssued implements auth.Observer.
func (m *metrics) TokenIssued() { m.issued.Inc() }

// TokenVerified implements auth.Observer.
func (m *metrics) TokenVerified(result string) {
	if c, ok := m.verifiedBy[result]; ok {
		c.Inc()
		return
	}
	m.verified.WithLabelValues(result).Inc()
}

// ReuseDetected implements auth.Observer.
func (m *metrics) ReuseDetected() { m.reuse.Inc() }

// RateLimited implements auth.Observer.
func (m *metrics) RateLimited(scope auth.RateScope) {
	m.rateLimited.WithLabelValues(string(scope)).Inc()
}

// Access implements cache.Observer.
func (m *metrics) Access(tier string, hit bool) {
	if cs, ok := m.cacheBy[tier]; ok {
		cs[boolIndex(hit)].Inc()
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cache.WithLabelValues(tier, result).Inc()
}

// operation counts one GraphQL operation.
func (m *metrics) operation(op graph.Operation) {
	m.opDuration.WithLabelValues(m.names.label(op.Name), opType(op)).Observe(op.Duration.Seconds())
	if len(op.Codes) == 0 {
		m.responseOK.Inc()
	}
	for _, c := range op.Codes {
		m.responses.WithLabelValues(c).Inc()
	}
}

// maxOperationNames bounds the operation label: operation names are chosen
// by clients, and every new name would be a new series.
const maxOperationNames = 200

// maxOperationName is the most of an operation's name that metrics and
// logs carry: the name is the client's to choose, as long as the query.
const maxOperationName = 64

// operationName is the name an operation is recorded under, in metrics and
// in logs alike: "anonymous" for none, else cut to maxOperationName bytes
// (GraphQL names are ASCII, so a cut never splits a character).
func operationName(name string) string {
	if name == "" {
		return "anonymous"
	}
	return name[:min(len(name), maxOperationName)]
}

// opNames turns operation names into label values of bounded cardinality:
// an unnamed operation is "anonymous", a name is cut to 64 bytes, and once
// maxOperationNames names have been seen, any new one is "other".
type opNames struct {
	max  int
	mu   sync.Mutex
	seen map[string]bool
}

func (n *opNames) label(name string) string {
	name = operationName(name)
	if name == "anonymous" {
		return name
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[name] {
		return name
	}
	if len(n.seen) >= n.max {
		return "other"
	}
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	// A copy: the name is a slice of the query text (the parser's tokens
	// are), and the map would otherwise keep a whole document per label.
	name = strings.Clone(name)
	n.seen[name] = true
	return name
}

// instrument measures every request by the route pattern of mux that
// serves it ("unmatched" for none: 404 and 405), so the route label has as
// many values as there are routes.
func (m *metrics) instrument(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.httpInFlight.Inc()
		defer m.httpInFlight.Dec()
		pattern := ""
		if r.Method != http.MethodConnect { // CONNECT paths are not canonicalised: never a label
			_, pattern = mux.Handler(r)
		}
		sw := graph.NewStatusWriter(w)
		next.ServeHTTP(sw, r)
		if errors.Is(r.Context().Err(), context.Canceled) {
			m.aborted.Inc() // the client went away (the server cancels only after this returns)
		}
		m.httpDuration.WithLabelValues(routeLabel(pattern), strconv.Itoa(sw.Status())).Observe(time.Since(start).Seconds())
	})
}

// routeLabel turns a mux pattern ("GET /healthz", "GET /{$}") into a route
// ("/healthz", "/").
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// metricsHandler serves the registry in the Prometheus text format.
func metricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelError),
		Registry:            reg, // counts its own errors
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
	})
}

// serveMetrics serves /metrics alone on ln (APP_METRICS_ADDR), until the
// returned function is called: after the main server has drained, so a
// shutdown can be watched to its end.
func (a *app) serveMetrics(ln net.Listener) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(a.registry, a.log))
	if a.cfg.Pprof {
		// Only here: a profile shows the heap, goroutine stacks and
		// command line, and costs CPU to take.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      120 * time.Second, // no WebSocket here; a CPU profile takes its ?seconds= (30 by default)
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics listener failed", slog.Any("error", err))
		}
	}()
	a.log.Info("serving metrics", slog.String("addr", ln.Addr().String()))
	return func() {
		_ = srv.Close()
		<-done
	}
}

// redisCollector reports whether Redis answers and the state of the
// go-redis connection pool, read when Prometheus scrapes.
type redisCollector struct {
	rdb                                         redis.UniversalClient
	up, hits, misses, timeouts, waits, waitSecs *prometheus.Desc
	conns, stale                                *prometheus.Desc
}

func newRedisCollector(rdb redis.UniversalClient) *redisCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("authql_redis_"+name, help, labels, nil)
	}
	return &redisCollector{
		rdb:      rdb,
		up:       desc("up", "1 if Redis answered a PING within 500 ms at scrape time, else 0."),
		hits:     desc("pool_hits_total", "Times a free connection was found in the pool."),
		misses:   desc("pool_misses_total", "Times no free connection was found in the pool (a new one was dialled)."),
		timeouts: desc("pool_timeouts_total", "Times waiting for a pool connection timed out."),
		waits:    desc("pool_waits_total", "Times a command waited for a pool connection."),
		waitSecs: desc("pool_wait_seconds_total", "Time spent waiting for pool connections."),
		conns:    desc("pool_connections", "Connections in the pool, by state: total or idle.", "state"),
		stale:    desc("pool_stale_connections_total", "Stale connections removed from the pool."),
	}
}

func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.hits, c.misses, c.timeouts, c.waits, c.waitSecs, c.conns, c.stale} {
		ch <- d
	}
}

func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolFloat(c.rdb.Ping(ctx).Err() == nil))
	s := c.rdb.PoolStats()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	counter(c.hits, float64(s.Hits))
	counter(c.misses, float64(s.Misses))
	counter(c.timeouts, float64(s.Timeouts))
	counter(c.waits, float64(s.WaitCount))
	counter(c.waitSecs, time.Duration(s.WaitDurationNs).Seconds())
	counter(c.stale, float64(s.StaleConns))
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.TotalConns), "total")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns), "idle")
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
