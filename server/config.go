package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/graph"
)

// Config is the whole configuration, read from the environment (12-factor)
// with flags that mirror it. Every entry is listed in docs/OPERATIONS.md.
type Config struct {
	Env  string // development or production
	Addr string

	DatabaseURL string // empty: the SQLite file DefaultSQLitePath
	DBMaxOpen   int
	DBMaxIdle   int
	// DBMaxIdleTime closes a pooled connection idle this long.
	DBMaxIdleTime time.Duration

	RedisURL           string   // empty (and no cluster or sentinel): embedded
	RedisClusterAddrs  []string // Redis Cluster seed nodes
	RedisSentinelAddrs []string
	RedisMasterName    string
	RedisPassword      string // for cluster and sentinel modes
	RedisPrefix        string
	// CacheRedisURL, if set, is the Redis of the cache tiers and persisted
	// queries; sessions, rate limits, revocations and the bus stay on the
	// main one.
	CacheRedisURL string
	// RedisTimeout bounds each Redis dial, read and write; RedisBudget the
	// time one request may wait on Redis in all (0: no budget).
	RedisTimeout time.Duration
	RedisBudget  time.Duration

	JWTSecret        string   // HS256 signing secret; empty in development: random
	JWTVerifySecrets []string // older secrets still accepted (key rotation)
	JWTEd25519Key    string   // base64 Ed25519 seed; when set, tokens are signed with EdDSA
	JWTEd25519Verify []string // base64 public keys of older Ed25519 keys
	JWTIssuer        string
	// EncryptionKey seals secrets kept in the database (TOTP secrets);
	// empty in development: a fixed development key.
	EncryptionKey string
	JWTAudience   string
	JWTLeeway     time.Duration
	AccessTTL     time.Duration
	RefreshTTL    time.Duration
	SessionIdle   time.Duration
	RefreshGrace  time.Duration
	MaxSessions   int

	CORSOrigins    []string
	TrustedProxies []netip.Prefix
	RequireHTTPS   bool
	BodyLimit      int64
	// MaxRunning is how many requests run on the CPU at once (admit.go):
	// 0 GOMAXPROCS+1, -1 no limit ("off").
	MaxRunning    int
	Playground    bool
	Introspection bool
	// TrustedDocuments are the persisted-documents manifests whose
	// documents are the only ones that run (none: any document runs).
	TrustedDocuments []string
	Limits           graph.Limits
	Cache            cache.TierConfig
	WebSocket        graph.WebSocketOptions
	// WSMaxPendingPerIP caps sockets without connection_init per client
	// address (0: no cap).
	WSMaxPendingPerIP int
	// WriteTimeout bounds every response but a WebSocket or an event
	// stream (0: no bound).
	WriteTimeout    time.Duration
	DebugCost       bool
	RateLimits      auth.RateLimits
	ShutdownTimeout time.Duration
	ShutdownGrace   time.Duration
	// StartupTimeout bounds the wait for the database and Redis at start.
	StartupTimeout time.Duration
	LogLevel       string
	LogFormat      string // text or json
	// LogDir, if set, gets one file per log stream instead of stderr.
	LogDir string
	// SlowThreshold is the duration from which an operation is logged to
	// the perf stream; 0: never.
	SlowThreshold time.Duration
	// MetricsAddr, if set, serves /metrics on its own listener (and not on
	// Addr); production sets it by default.
	MetricsAddr string
	// Pprof serves net/http/pprof beside /metrics on MetricsAddr's
	// listener, never on Addr.
	Pprof bool

	// PublicURL is the base of the links mails carry (development
	// default: http://localhost and the port of Addr).
	PublicURL string
	// SMTPURL is where mail goes; empty: to the log (development only).
	SMTPURL  string
	MailFrom string
	// RequireVerifiedEmail: sign-up signs in only once the address is
	// verified, and says nothing of which addresses have accounts.
	RequireVerifiedEmail bool

	// PasswordCost is the argon2id cost; tests lower it.
	PasswordMemoryKiB uint32
	PasswordTime      uint32

	// ratesOff names the rate limit settings set to off (production
	// refuses them).
	ratesOff []string
	// HashConcurrency bounds the password hashes running at once (0:
	// GOMAXPROCS); HashWait is how long one waits for its turn.
	HashConcurrency int
	HashWait        time.Duration
	// GCHeapFloor is the heap the collector may reach before collecting
	// however little is live (gc.go): -1 picks it from the container's
	// memory limit, 0 turns it off.
	GCHeapFloor int64
	// Tracing is on when the environment names an OTLP endpoint (the
	// standard OTEL_* variables, read by the SDK itself; see trace.go).
	Tracing bool
	// unknown describes each APP_ variable of the environment that is no
	// setting (production refuses them: a misspelled setting is silently
	// its default).
	unknown []string
}

// DefaultSQLitePath is where the embedded database lives by default.
const DefaultSQLitePath = "./data/app.db"

// Production reports whether the server runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// EmbeddedRedis reports whether no external Redis is configured.
func (c Config) EmbeddedRedis() bool {
	return c.RedisURL == "" && len(c.RedisClusterAddrs) == 0 && len(c.RedisSentinelAddrs) == 0
}

// mainRedis is how to reach the configured main Redis (not the embedded
// one, whose address is known only once it runs).
func (c Config) mainRedis() rdb.Config {
	return rdb.Config{
		URL: c.RedisURL, ClusterAddrs: c.RedisClusterAddrs,
		SentinelAddrs: c.RedisSentinelAddrs, MasterName: c.RedisMasterName,
		Password: c.RedisPassword, Timeout: c.RedisTimeout,
	}
}

// cacheRedis is how to reach the Redis of the cache tiers and persisted
// queries: APP_CACHE_REDIS_URL's, or else the main one.
func (c Config) cacheRedis() rdb.Config {
	if c.CacheRedisURL == "" {
		return c.mainRedis()
	}
	return rdb.Config{URL: c.CacheRedisURL, Timeout: c.RedisTimeout}
}

// setting is one configuration entry: its environment variable, the flag
// that mirrors it, its default and what it means. The table below is the
// single source of the names; the configuration table of docs/OPERATIONS.md lists it.
type setting struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{"APP_ENV", "env", "development", "development or production", func(c *Config, v string) error {
			if v != "development" && v != "production" {
				return fmt.Errorf("must be development or production, not %q", v)
			}
			c.Env = v
			return nil
		}},
		{"APP_ADDR", "addr", ":8080", "listen address", str(func(c *Config) *string { return &c.Addr })},
		{"DATABASE_URL", "database-url", "", "postgres:// URL, or a SQLite file (sqlite:PATH or a path); other schemes are refused; default " + DefaultSQLitePath, str(func(c *Config) *string { return &c.DatabaseURL })},
		{"APP_DB_MAX_OPEN_CONNS", "db-max-open-conns", "0", "database pool: max open connections (0: 4 per core on PostgreSQL, at most 32; unbounded on SQLite)", integer(func(c *Config) *int { return &c.DBMaxOpen })},
		{"APP_DB_MAX_IDLE_CONNS", "db-max-idle-conns", "0", "database pool: max idle connections (0: the max open, or 32)", integer(func(c *Config) *int { return &c.DBMaxIdle })},
		{"APP_DB_CONN_MAX_IDLE_TIME", "db-conn-max-idle-time", "5m", "database pool: close a connection idle this long", duration(func(c *Config) *time.Duration { return &c.DBMaxIdleTime })},
		{"REDIS_URL", "redis-url", "", "redis:// URL of a single Redis; default: embedded in-process server", str(func(c *Config) *string { return &c.RedisURL })},
		{"APP_REDIS_CLUSTER_ADDRS", "redis-cluster-addrs", "", "comma-separated Redis Cluster seed nodes (host:port)", list(func(c *Config) *[]string { return &c.RedisClusterAddrs })},
		{"APP_REDIS_SENTINEL_ADDRS", "redis-sentinel-addrs", "", "comma-separated Redis Sentinel nodes (host:port)", list(func(c *Config) *[]string { return &c.RedisSentinelAddrs })},
		{"APP_REDIS_MASTER_NAME", "redis-master-name", "", "master name for Redis Sentinel", str(func(c *Config) *string { return &c.RedisMasterName })},
		{"APP_REDIS_PASSWORD", "redis-password", "", "password for Redis Cluster or Sentinel nodes", str(func(c *Config) *string { return &c.RedisPassword })},
		{"APP_CACHE_REDIS_URL", "cache-redis-url", "", "redis:// URL of a Redis for the cache tiers and persisted queries only (run it with maxmemory and allkeys-lru); default: the main Redis", str(func(c *Config) *string { return &c.CacheRedisURL })},
		{"APP_REDIS_TIMEOUT", "redis-timeout", "1s", "longest wait for one Redis dial, read or write (background work; requests are bounded by APP_REDIS_REQUEST_BUDGET)", duration(func(c *Config) *time.Duration { return &c.RedisTimeout })},
		{"APP_REDIS_REQUEST_BUDGET", "redis-request-budget", "250ms", "longest time one request may wait on Redis, all its commands together; then SERVICE_UNAVAILABLE (0: only APP_REDIS_TIMEOUT per command)", duration(func(c *Config) *time.Duration { return &c.RedisBudget })},
		{"APP_REDIS_PREFIX", "redis-prefix", "", "prefix of every Redis key (to share one Redis)", str(func(c *Config) *string { return &c.RedisPrefix })},
		{"APP_JWT_SECRET", "jwt-secret", "", "HS256 signing secret, at least 32 bytes; development default: random per start", str(func(c *Config) *string { return &c.JWTSecret })},
		{"APP_JWT_VERIFY_SECRETS", "jwt-verify-secrets", "", "comma-separated older secrets still accepted while tokens signed with them live", list(func(c *Config) *[]string { return &c.JWTVerifySecrets })},
		{"APP_JWT_ED25519_KEY", "jwt-ed25519-key", "", "base64 Ed25519 seed (32 bytes): sign with EdDSA and publish the public key at /.well-known/jwks.json (server gen-key makes one)", str(func(c *Config) *string { return &c.JWTEd25519Key })},
		{"APP_JWT_ED25519_VERIFY_KEYS", "jwt-ed25519-verify-keys", "", "comma-separated base64 public keys of older Ed25519 keys, still accepted and published", list(func(c *Config) *[]string { return &c.JWTEd25519Verify })},
		{"APP_ENCRYPTION_KEY", "encryption-key", "", "key that encrypts secrets at rest (TOTP secrets, AES-256-GCM), at least 32 random bytes; development default: a fixed, public key; changing it makes enrolled authenticators unusable", str(func(c *Config) *string { return &c.EncryptionKey })},
		{"APP_JWT_ISSUER", "jwt-issuer", "authql", "iss claim of access tokens", str(func(c *Config) *string { return &c.JWTIssuer })},
		{"APP_JWT_AUDIENCE", "jwt-audience", "authql", "aud claim of access tokens", str(func(c *Config) *string { return &c.JWTAudience })},
		{"APP_JWT_LEEWAY", "jwt-leeway", "30s", "clock skew tolerated when checking exp/iat", duration(func(c *Config) *time.Duration { return &c.JWTLeeway })},
		{"APP_ACCESS_TOKEN_TTL", "access-token-ttl", "15m", "access token lifetime", duration(func(c *Config) *time.Duration { return &c.AccessTTL })},
		{"APP_REFRESH_TOKEN_TTL", "refresh-token-ttl", "168h", "absolute session and refresh token lifetime", duration(func(c *Config) *time.Duration { return &c.RefreshTTL })},
		{"APP_SESSION_IDLE_TIMEOUT", "session-idle-timeout", "30m", "a session unused this long ends", duration(func(c *Config) *time.Duration { return &c.SessionIdle })},
		{"APP_REFRESH_REUSE_GRACE", "refresh-reuse-grace", "10s", "a rotated refresh token presented again within this window, by the client that rotated it, returns the same pair", duration(func(c *Config) *time.Duration { return &c.RefreshGrace })},
		{"APP_MAX_SESSIONS_PER_USER", "max-sessions-per-user", "50", "live sessions per user; signing in once more ends the oldest (0: no cap)", integer(func(c *Config) *int { return &c.MaxSessions })},
		{"APP_CORS_ORIGINS", "cors-origins", "", "comma-separated origins allowed to call the API from a browser; development default: any http://localhost:* and http://127.0.0.1:*", list(func(c *Config) *[]string { return &c.CORSOrigins })},
		{"APP_BODY_LIMIT", "body-limit", "1048576", "maximum request body in bytes", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return errors.New("must be a positive number of bytes")
			}
			c.BodyLimit = n
			return nil
		}},
		{"APP_PLAYGROUND", "playground", "", "serve the GraphQL playground at / (default: on in development, off in production)", optBool(func(c *Config) *bool { return &c.Playground })},
		{"APP_INTROSPECTION", "introspection", "", "allow schema introspection (default: on in development, off in production)", optBool(func(c *Config) *bool { return &c.Introspection })},
		{"APP_TRUSTED_DOCUMENTS", "trusted-documents", "", "comma-separated paths of persisted-documents manifests (JSON: sha256 hex -> document); when set, only their documents run", list(func(c *Config) *[]string { return &c.TrustedDocuments })},
		{"APP_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed", func(c *Config, v string) error {
			c.TrustedProxies = nil
			for _, s := range splitList(v) {
				if !strings.Contains(s, "/") {
					a, err := netip.ParseAddr(s)
					if err != nil {
						return fmt.Errorf("%q is not an address or CIDR", s)
					}
					c.TrustedProxies = append(c.TrustedProxies, netip.PrefixFrom(a, a.BitLen()))
					continue
				}
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("%q is not an address or CIDR", s)
				}
				c.TrustedProxies = append(c.TrustedProxies, p.Masked())
			}
			return nil
		}},
		{"APP_REQUIRE_HTTPS", "require-https", "", "refuse plain HTTP (redirect GET, refuse the rest) and send HSTS; behind a TLS-terminating proxy list it in APP_TRUSTED_PROXIES (default: on in production)", optBool(func(c *Config) *bool { return &c.RequireHTTPS })},
		{"APP_CACHE_USER_TTL", "cache-user-ttl", shortDuration(cache.DefaultTierConfig().UserTTL), "user records in Redis (0: off)", duration(func(c *Config) *time.Duration { return &c.Cache.UserTTL })},
		{"APP_CACHE_PAGE_TTL", "cache-page-ttl", shortDuration(cache.DefaultTierConfig().PageTTL), "pages of post lists and their totals in Redis (0: off)", duration(func(c *Config) *time.Duration { return &c.Cache.PageTTL })},
		{"APP_CACHE_RESPONSE_TTL", "cache-response-ttl", shortDuration(cache.DefaultTierConfig().ResponseTTL), "whole responses of cacheable queries in Redis (0: off)", duration(func(c *Config) *time.Duration { return &c.Cache.ResponseTTL })},
		{"APP_WS_MAX_CONNECTIONS_PER_USER", "ws-max-connections-per-user", strconv.Itoa(graph.DefaultWebSocketOptions().MaxConnectionsPerUser), "live connections (WebSockets and SSE streams) per user and instance (0: no limit)", integer(func(c *Config) *int { return &c.WebSocket.MaxConnectionsPerUser })},
		{"APP_WS_MAX_SUBSCRIPTIONS", "ws-max-subscriptions", strconv.Itoa(graph.DefaultWebSocketOptions().MaxSubscriptions), "subscriptions per WebSocket (0: no limit)", integer(func(c *Config) *int { return &c.WebSocket.MaxSubscriptions })},
		{"APP_WS_IDLE_TIMEOUT", "ws-idle-timeout", shortDuration(graph.DefaultWebSocketOptions().IdleTimeout), "close a WebSocket without subscriptions after this long", duration(func(c *Config) *time.Duration { return &c.WebSocket.IdleTimeout })},
		{"APP_WS_PING_INTERVAL", "ws-ping-interval", shortDuration(graph.DefaultWebSocketOptions().PingInterval), "WebSocket keep-alive (a peer silent for twice this long is dropped) and SSE keep-alive comments", duration(func(c *Config) *time.Duration { return &c.WebSocket.PingInterval })},
		{"APP_WS_MAX_BACKLOG", "ws-max-backlog", strconv.Itoa(graph.DefaultMaxBacklog), "bytes waiting to be written to one WebSocket or SSE stream; a socket past it is closed with 4413, a stream ends", integer(func(c *Config) *int { return &c.WebSocket.MaxBacklog })},
		{"APP_WS_MAX_UNAUTHENTICATED_PER_IP", "ws-max-unauthenticated-per-ip", "20", "WebSockets per client address (an IPv6 client by its APP_RATE_IPV6_PREFIX) and instance that have not completed connection_init; more are refused with 429 (0: no limit)", integer(func(c *Config) *int { return &c.WSMaxPendingPerIP })},
		{"APP_MAX_RUNNING_REQUESTS", "max-running-requests", "0", "requests run on the CPU at once, the others queued in arrival order; one waiting on Redis, PostgreSQL or other instances makes room (0: one more than the cores, GOMAXPROCS+1; off: no limit)", func(c *Config, v string) error {
			if v == "off" {
				c.MaxRunning = -1
				return nil
			}
			return integer(func(c *Config) *int { return &c.MaxRunning })(c, v)
		}},
		{"APP_WRITE_TIMEOUT", "write-timeout", "30s", "longest time to answer a request, WebSockets and SSE streams excepted (a slow handler or a slow reader is cut off)", duration(func(c *Config) *time.Duration { return &c.WriteTimeout })},
		{"APP_DEBUG_COST", "debug-cost", "", "add extensions.cost {sqlStatements, redisRoundTrips, complexity} to responses (default: on in development)", optBool(func(c *Config) *bool { return &c.DebugCost })},
		{"APP_MAX_DEPTH", "max-depth", strconv.Itoa(graph.DefaultLimits().MaxDepth), "deepest field nesting of an operation, fragments followed", integer(func(c *Config) *int { return &c.Limits.MaxDepth })},
		{"APP_MAX_FIELDS", "max-fields", strconv.Itoa(graph.DefaultLimits().MaxFields), "most fields of an operation once fragments are expanded", integer(func(c *Config) *int { return &c.Limits.MaxFields })},
		{"APP_COMPLEXITY_LIMIT", "complexity-limit", strconv.Itoa(graph.DefaultLimits().MaxComplexity), "highest computed complexity of an operation (a connection counts its edges once per item of its page)", integer(func(c *Config) *int { return &c.Limits.MaxComplexity })},
		{"APP_MAX_TOKENS", "max-tokens", strconv.Itoa(graph.DefaultLimits().MaxTokens), "most lexer tokens in a query document", integer(func(c *Config) *int { return &c.Limits.MaxTokens })},
		{"APP_MAX_QUERY_BYTES", "max-query-bytes", strconv.Itoa(graph.DefaultLimits().MaxQueryBytes), "longest query document in bytes, refused before it is parsed, cached or persisted (0: no limit)", integer(func(c *Config) *int { return &c.Limits.MaxQueryBytes })},
		{"APP_RATE_LOGIN_ACCOUNT", "rate-login-account", rateString(auth.DefaultRateLimits().LoginAccount), "failed logins per account from devices and addresses it does not know (N/period, or off)", rate(func(c *Config) *auth.Rate { return &c.RateLimits.LoginAccount })},
		{"APP_RATE_LOGIN_KNOWN", "rate-login-known", rateString(auth.DefaultRateLimits().LoginKnown), "failed logins per account from each device, address or session it knows (a budget of its own)", rate(func(c *Config) *auth.Rate { return &c.RateLimits.LoginKnown })},
		{"APP_LOGIN_KNOWN_TTL", "login-known-ttl", shortDuration(auth.DefaultRateLimits().KnownTTL), "how long a device or address a login succeeded from stays known to the account", duration(func(c *Config) *time.Duration { return &c.RateLimits.KnownTTL })},
		{"APP_RATE_LOGIN_IP", "rate-login-ip", rateString(auth.DefaultRateLimits().LoginIP), "login attempts per client address", rate(func(c *Config) *auth.Rate { return &c.RateLimits.LoginIP })},
		{"APP_RATE_REGISTER_IP", "rate-register-ip", rateString(auth.DefaultRateLimits().RegisterIP), "sign-ups per client address", rate(func(c *Config) *auth.Rate { return &c.RateLimits.RegisterIP })},
		{"APP_RATE_REFRESH_SESSION", "rate-refresh-session", rateString(auth.DefaultRateLimits().RefreshSession), "refreshes per session", rate(func(c *Config) *auth.Rate { return &c.RateLimits.RefreshSession })},
		{"APP_RATE_REFRESH_IP", "rate-refresh-ip", rateString(auth.DefaultRateLimits().RefreshIP), "refresh attempts per client address", rate(func(c *Config) *auth.Rate { return &c.RateLimits.RefreshIP })},
		{"APP_RATE_API", "rate-api", rateString(auth.DefaultRateLimits().API), "query complexity per user (or anonymous address) per period", rate(func(c *Config) *auth.Rate { return &c.RateLimits.API })},
		{"APP_RATE_IPV6_PREFIX", "rate-ipv6-prefix", strconv.Itoa(auth.DefaultRateLimits().IPv6Prefix), "per-address limits and the cap on unauthenticated WebSockets key an IPv6 client by this prefix length (IPv4: the address)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 32 || n > 128 {
				return fmt.Errorf("must be a prefix length from 32 to 128, not %q", v)
			}
			c.RateLimits.IPv6Prefix = n
			return nil
		}},
		{"APP_RATE_MAIL_IP", "rate-mail-ip", rateString(auth.DefaultRateLimits().MailIP), "password-reset requests and verification re-sends per client address", rate(func(c *Config) *auth.Rate { return &c.RateLimits.MailIP })},
		{"APP_RATE_MAIL_ACCOUNT", "rate-mail-account", rateString(auth.DefaultRateLimits().MailAccount), "password-reset requests and verification re-sends per e-mail address (known or not), and reset attempts per account", rate(func(c *Config) *auth.Rate { return &c.RateLimits.MailAccount })},
		{"APP_PUBLIC_URL", "public-url", "", "base URL of the links in mails (verification, password reset), e.g. https://app.example.com; development default: http://localhost and the port of APP_ADDR; required in production", str(func(c *Config) *string { return &c.PublicURL })},
		{"APP_SMTP_URL", "smtp-url", "", "mail server: smtp://user:pass@host:587 (STARTTLS required; ?tls=opportunistic or ?tls=none for a local relay) or smtps://user:pass@host:465 (implicit TLS); default: mails are logged and listed by `server mails` (development only)", str(func(c *Config) *string { return &c.SMTPURL })},
		{"APP_MAIL_FROM", "mail-from", "authql <no-reply@localhost>", "sender of mails (an address, or Name <address>)", str(func(c *Config) *string { return &c.MailFrom })},
		{"APP_REQUIRE_VERIFIED_EMAIL", "require-verified-email", "", "sign-up returns no tokens and login is refused until the address is verified; registering an existing address answers like a new one (default: on in production, off in development)", optBool(func(c *Config) *bool { return &c.RequireVerifiedEmail })},
		{"APP_PASSWORD_HASH_CONCURRENCY", "password-hash-concurrency", "0", "password hashes running at once, each holding 19 MiB (0: one per core, GOMAXPROCS)", integer(func(c *Config) *int { return &c.HashConcurrency })},
		{"APP_PASSWORD_HASH_WAIT", "password-hash-wait", shortDuration(auth.DefaultHashWait), "how long a login or sign-up waits for a hashing slot before SERVICE_UNAVAILABLE", duration(func(c *Config) *time.Duration { return &c.HashWait })},
		{"APP_STARTUP_TIMEOUT", "startup-timeout", "60s", "at start, how long to wait for the database and Redis (retrying; /healthz alive, /readyz 503 meanwhile) before giving up", duration(func(c *Config) *time.Duration { return &c.StartupTimeout })},
		{"APP_SHUTDOWN_GRACE", "shutdown-grace", "", "on SIGTERM, how long /readyz reports not-ready while requests are still served, before draining (default: 0 in development, 5s in production)", duration(func(c *Config) *time.Duration { return &c.ShutdownGrace })},
		{"APP_SHUTDOWN_TIMEOUT", "shutdown-timeout", "20s", "how long in-flight requests may take to finish on SIGTERM", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"APP_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"APP_LOG_FORMAT", "log-format", "", "text or json (default: text in development, json in production)", str(func(c *Config) *string { return &c.LogFormat })},
		{"APP_LOG_DIR", "log-dir", "", "write each log stream to its own file in this directory (auth.log, api.log, error.log, perf.log, app.log) instead of stderr", str(func(c *Config) *string { return &c.LogDir })},
		{"APP_SLOW_THRESHOLD", "slow-threshold", "500ms", "operations at least this slow are logged to the perf stream (0: off)", duration(func(c *Config) *time.Duration { return &c.SlowThreshold })},
		{"APP_GC_HEAP_FLOOR", "gc-heap-floor", "", "heap the garbage collector may reach before a collection however little is live, in GOMEMLIMIT's units (128MiB, 1GiB); below it GOGC is raised, above it stays 400; ignored when GOGC is set (0: off; default: 128MiB, at most a quarter of the container's memory limit and half of GOMEMLIMIT)", func(c *Config, v string) error {
			n, err := parseBytes(v)
			if err != nil {
				return err
			}
			c.GCHeapFloor = n
			return nil
		}},
		{"APP_PPROF", "pprof", "", "serve net/http/pprof under /debug/pprof/ on the APP_METRICS_ADDR listener (which must be set), never on APP_ADDR", optBool(func(c *Config) *bool { return &c.Pprof })},
		{"APP_METRICS_ADDR", "metrics-addr", "", "serve GET /metrics (Prometheus) on this address instead of on APP_ADDR (default: on APP_ADDR in development, " + defaultProductionMetricsAddr + " in production)", str(func(c *Config) *string { return &c.MetricsAddr })},
	}
}

// loadConfig reads the configuration from getenv, then flags (which win),
// and returns every problem at once. environ lists the whole environment
// (KEY=value, as os.Environ), so that an APP_ variable that is not a
// setting is noticed.
func loadConfig(args []string, getenv func(string) string, environ func() []string, stderr io.Writer) (Config, error) {
	c := Config{GCHeapFloor: -1}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: server [flags]\n       server promote-admin [flags] EMAIL\n       server demote-admin [flags] EMAIL\n       server mails [-n N] [flags]\n\n"+
			"Every flag mirrors an environment variable (in parentheses); a flag given wins.\n\n")
		fs.PrintDefaults()
	}
	table := settings()
	flags := make([]*string, len(table))
	for i, s := range table {
		// The flag's default is the built-in one, never the environment's
		// value: -h must not print a secret.
		flags[i] = fs.String(s.flag, s.def, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	vals := make([]string, len(table))
	for i, s := range table {
		switch {
		case given[s.flag]:
			vals[i] = *flags[i]
		case getenv(s.env) != "":
			vals[i] = getenv(s.env)
		default:
			vals[i] = s.def
		}
	}
	// Defaults that depend on the environment are applied before the
	// explicit values.
	c.Env = "development"
	for i, s := range table {
		if s.env == "APP_ENV" {
			_ = s.set(&c, vals[i])
		}
	}
	c.Playground, c.Introspection = !c.Production(), !c.Production()
	c.RequireHTTPS = c.Production()
	c.DebugCost = !c.Production()
	c.RequireVerifiedEmail = c.Production()
	if c.Production() {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.Production() {
		c.LogFormat = "json"
		c.MetricsAddr = defaultProductionMetricsAddr
	} else {
		c.LogFormat = "text"
	}
	var errs []error
	for i, s := range table {
		if vals[i] == "" {
			continue
		}
		if err := s.set(&c, vals[i]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
		if r, err := auth.ParseRate(vals[i]); err == nil && r.N == 0 && isRateSetting(s) {
			c.ratesOff = append(c.ratesOff, s.env)
		}
	}
	if c.PublicURL == "" && !c.Production() {
		c.PublicURL = defaultPublicURL(c.Addr)
	}
	c.unknown = unknownSettings(table, environ())
	var err error
	if c.Tracing, err = tracingFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validate()...)
	argon := auth.DefaultArgon2()
	c.PasswordMemoryKiB, c.PasswordTime = argon.Memory, argon.Time
	return c, errors.Join(errs...)
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = splitList(v)
		return nil
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func rate(field func(*Config) *auth.Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		r, err := auth.ParseRate(v)
		if err != nil {
			return err
		}
		*field(c) = r
		return nil
	}
}

func rateString(r auth.Rate) string { return strconv.Itoa(r.N) + "/" + shortDuration(r.Period) }

// shortDuration prints 15m, 1h and 1h30m rather than 15m0s, 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("must be a non-negative integer, not %q", v)
		}
		*field(c) = n
		return nil
	}
}

// parseBytes reads a size as GOMEMLIMIT does: a number of bytes with an
// optional unit B, KiB, MiB, GiB or TiB.
func parseBytes(v string) (int64, error) {
	num, mul := v, int64(1)
	for i, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if strings.HasSuffix(v, u) {
			num, mul = strings.TrimSuffix(v, u), int64(1)<<(10*(i+1))
			break
		}
	}
	if mul == 1 {
		num = strings.TrimSuffix(v, "B")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("must be a size like 128MiB or 1GiB, not %q", v)
	}
	return n * mul, nil
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration like 15m or 30s, not %q", v)
		}
		// No setting means anything by a negative duration; some would
		// panic (a ticker) or act at once (a timeout).
		if d < 0 {
			return fmt.Errorf("must not be negative, not %q", v)
		}
		*field(c) = d
		return nil
	}
}

func optBool(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false, not %q", v)
		}
		*field(c) = b
		return nil
	}
}

// defaultPublicURL is the development server's own address: the links of
// mails lead to its pages.
func defaultPublicURL(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		port = "8080"
	}
	return "http://localhost:" + port
}
