package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rs/cors"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/graph"
	"github.com/authql/authql/server/playground"
)

// routes is the whole HTTP surface in one place:
//
//	POST /query, GET /query   GraphQL (GET: queries only)
//	GET  /                    the playground (development by default)
//	GET  /playground/...      its scripts, styles and icon (embedded, hashed names)
//	GET  /.well-known/jwks.json  public keys that verify access tokens (Ed25519 only)
//	GET, POST /verify-email, /reset-password  the pages of mailed links (accountpages.go)
//	GET  /healthz             the process is alive
//	GET  /readyz              the database and Redis answer, and we are not draining
//	GET  /metrics             Prometheus metrics (unless APP_METRICS_ADDR serves them apart)
//
// Middleware, outermost first: the connection's turn on the CPU
// (turns.go), the trace span (when tracing is on), the deadline of every
// response but a WebSocket, metrics, panic recovery, request id, security
// headers, CORS (around), then on /query no-store, the Redis budget, cost
// counting, the operation log, the body limit, the request's turn to run
// (admit.go), caller identification and the cap on sockets not yet
// authenticated (api).
func (a *app) routes(gql http.Handler) http.Handler {
	mux := http.NewServeMux()
	api := a.api(gql)
	mux.Handle("/query", api)
	a.accountPages(mux, api)
	if a.cfg.Playground {
		mux.Handle("GET /{$}", playground.Page("/query"))
		mux.Handle("GET "+playground.AssetPrefix, playground.Assets())
	}
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, map[string]any{"keys": a.sessions.Tokens().JWKS()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		if err := a.ready(r.Context()); err != nil {
			a.log.WarnContext(r.Context(), "not ready", slog.Any("error", err))
			// The reason stays in the log: /readyz is public.
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if a.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", metricsHandler(a.registry, a.log))
	}
	return a.around(mux)
}

// api wraps the GraphQL handler in the middleware of /query alone.
func (a *app) api(gql http.Handler) http.Handler {
	px := proxies{a.cfg.TrustedProxies}
	pending := &pendingSockets{max: a.cfg.WSMaxPendingPerIP, client: func(r *http.Request) string {
		return auth.AddrKey(px.clientIP(r), a.cfg.RateLimits.IPv6Prefix)
	}}
	h := pending.limit(gql)
	h = auth.Middleware(authCost{a.sessions}, px.clientIP, "/query")(h)
	h = a.admission.admit(h)
	h = limitBody(a.cfg.BodyLimit)(h)
	h = a.logOperations(h)
	h = withCost(h)
	h = a.withRedisBudget(h)
	h = noStore(h)
	return h
}

// around wraps mux in the middleware every response goes through, from
// the first request on (the start-up handler too).
func (a *app) around(mux *http.ServeMux) http.Handler {
	var h http.Handler = routeRefusals(mux)
	h = a.cors().Handler(h)
	h = securityHeaders(h)
	if a.cfg.RequireHTTPS {
		h = proxies{a.cfg.TrustedProxies}.requireHTTPS(h)
	}
	h = withRequestID(h)
	h = a.recoverHTTP(h)
	h = a.metrics.instrument(mux, h)
	h = bounded(a.cfg.WriteTimeout)(h)
	h = a.traceHTTP(h)
	return cpuTurns.take(h)
}

// cors allows browsers on the configured origins to call the API. In
// development with no list, any localhost origin may (a front end on
// localhost:5173 just works); in production only the listed ones.
func (a *app) cors() *cors.Cors {
	opts := cors.Options{
		AllowedOrigins: a.cfg.CORSOrigins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "X-Request-ID", auth.WebClientHeader},
		// Credentials (the refresh cookie) only ever travel to listed
		// origins; rs/cors never answers "*" with credentials.
		AllowCredentials: true,
		ExposedHeaders:   []string{"X-Request-ID", "Retry-After"},
		MaxAge:           600,
	}
	if len(opts.AllowedOrigins) == 0 && !a.cfg.Production() {
		opts.AllowOriginFunc = isLocalOrigin
	}
	return cors.New(opts)
}

func isLocalOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// securityHeaders marks every response as what it is. API responses are
// JSON, never to be sniffed as HTML or framed. The playground's handlers
// replace the CSP with the page's own (playground.CSP).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses request bodies over n bytes with 413, before gqlgen
// reads them (its POST transport reads bodies whole, with no limit).
func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Method == http.MethodGet {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > n {
				tooLarge(w, r, n)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n))
			if err != nil {
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					tooLarge(w, r, n)
					return
				}
				writeError(w, r, graph.CodeBadRequest, "could not read the request body")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
		})
	}
}

func tooLarge(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Connection", "close")
	writeError(w, r, graph.CodePayloadTooLarge, "request body is larger than "+strconv.FormatInt(n, 10)+" bytes")
}

// recoverHTTP turns a panic outside gqlgen (which recovers its own) into a
// logged 500, without killing the process.
func (a *app) recoverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.ErrorContext(r.Context(), "panic in handler", slog.Any("panic", p))
				writeError(w, r, graph.CodeInternal, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeError refuses a request before GraphQL runs, as GraphQL does:
// JSON with extensions.code, the status graph.RefusalStatus gives the code.
func writeError(w http.ResponseWriter, r *http.Request, code, msg string) {
	graph.Refusal{Code: code, Message: msg}.Write(w, r)
}

// routeRefusals answers a request that no route takes like every other
// refusal (the mux alone answers in text/plain): NOT_FOUND, or
// METHOD_NOT_ALLOWED with the mux's Allow header for a path served with
// other methods. Redirects to a cleaned path pass through.
func routeRefusals(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		miss := graph.HoldErrors(w)
		mux.ServeHTTP(miss, r)
		switch miss.Held() {
		case http.StatusNotFound:
			writeError(w, r, graph.CodeNotFound, "nothing is served at this path; the API is at /query")
		case http.StatusMethodNotAllowed:
			writeError(w, r, graph.CodeMethodNotAllowed, "this path is not served with this method; Allow lists those it is")
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// withCost starts counting the request's SQL statements and Redis round
// trips (see graph's extensions.cost).
func withCost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := cost.NewContext(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withRedisBudget gives every API request but a WebSocket or an event
// stream its Redis budget (APP_REDIS_REQUEST_BUDGET): a hung Redis costs
// a request that long, then it is answered SERVICE_UNAVAILABLE. A
// WebSocket or a stream lives for hours; each Redis command it sends is
// bounded by APP_REDIS_TIMEOUT.
func (a *app) withRedisBudget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.RedisBudget > 0 && !isLive(r) {
			r = r.WithContext(rdb.WithBudget(r.Context(), a.cfg.RedisBudget))
		}
		next.ServeHTTP(w, r)
	})
}

// authCost attributes the Redis round trips of authentication.
type authCost struct{ auth.Authenticator }

func (a authCost) Authenticate(ctx context.Context, token string) (auth.Viewer, error) {
	c := cost.FromContext(ctx)
	if c == nil {
		return a.Authenticator.Authenticate(ctx, token)
	}
	before := c.Redis.Load()
	v, err := a.Authenticator.Authenticate(ctx, token)
	c.AuthRedis.Add(c.Redis.Load() - before)
	return v, err
}
