package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration, read from the environment (12-factor)
// with flags that mirror it. Every entry is listed in the README.
type Config struct {
	Env  string // development or production
	Addr string

	DatabaseURL string // empty: the SQLite file DefaultSQLitePath
	DBMaxOpen   int
	DBMaxIdle   int

	RedisURL           string   // empty (and no cluster or sentinel): embedded
	RedisClusterAddrs  []string // Redis Cluster seed nodes
	RedisSentinelAddrs []string
	RedisMasterName    string
	RedisPassword      string // for cluster and sentinel modes
	RedisPrefix        string

	JWTSecret        string   // HS256 signing secret; empty in development: random
	JWTVerifySecrets []string // older secrets still accepted (key rotation)
	JWTIssuer        string
	JWTAudience      string
	JWTLeeway        time.Duration
	AccessTTL        time.Duration
	RefreshTTL       time.Duration
	SessionIdle      time.Duration
	RefreshGrace     time.Duration

	CORSOrigins     []string
	BodyLimit       int64
	Playground      bool
	Introspection   bool
	ComplexityLimit int
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string // text or json

	// PasswordCost is the argon2id cost; tests lower it.
	PasswordMemoryKiB uint32
	PasswordTime      uint32
}

// DefaultSQLitePath is where the embedded database lives by default.
const DefaultSQLitePath = "./data/app.db"

// Production reports whether the server runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// EmbeddedRedis reports whether no external Redis is configured.
func (c Config) EmbeddedRedis() bool {
	return c.RedisURL == "" && len(c.RedisClusterAddrs) == 0 && len(c.RedisSentinelAddrs) == 0
}

// setting is one configuration entry: its environment variable, the flag
// that mirrors it, its default and what it means. The table below is the
// single source of the names; the README's configuration table lists it.
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
		{"DATABASE_URL", "database-url", "", "postgres:// URL, or a SQLite file (sqlite:PATH); default " + DefaultSQLitePath, str(func(c *Config) *string { return &c.DatabaseURL })},
		{"APP_DB_MAX_OPEN_CONNS", "db-max-open-conns", "0", "database pool: max open connections (0: driver default)", integer(func(c *Config) *int { return &c.DBMaxOpen })},
		{"APP_DB_MAX_IDLE_CONNS", "db-max-idle-conns", "0", "database pool: max idle connections (0: driver default)", integer(func(c *Config) *int { return &c.DBMaxIdle })},
		{"REDIS_URL", "redis-url", "", "redis:// URL of a single Redis; default: embedded in-process server", str(func(c *Config) *string { return &c.RedisURL })},
		{"APP_REDIS_CLUSTER_ADDRS", "redis-cluster-addrs", "", "comma-separated Redis Cluster seed nodes (host:port)", list(func(c *Config) *[]string { return &c.RedisClusterAddrs })},
		{"APP_REDIS_SENTINEL_ADDRS", "redis-sentinel-addrs", "", "comma-separated Redis Sentinel nodes (host:port)", list(func(c *Config) *[]string { return &c.RedisSentinelAddrs })},
		{"APP_REDIS_MASTER_NAME", "redis-master-name", "", "master name for Redis Sentinel", str(func(c *Config) *string { return &c.RedisMasterName })},
		{"APP_REDIS_PASSWORD", "redis-password", "", "password for Redis Cluster or Sentinel nodes", str(func(c *Config) *string { return &c.RedisPassword })},
		{"APP_REDIS_PREFIX", "redis-prefix", "", "prefix of every Redis key (to share one Redis)", str(func(c *Config) *string { return &c.RedisPrefix })},
		{"APP_JWT_SECRET", "jwt-secret", "", "HS256 signing secret, at least 32 bytes; development default: random per start", str(func(c *Config) *string { return &c.JWTSecret })},
		{"APP_JWT_VERIFY_SECRETS", "jwt-verify-secrets", "", "comma-separated older secrets still accepted while tokens signed with them live", list(func(c *Config) *[]string { return &c.JWTVerifySecrets })},
		{"APP_JWT_ISSUER", "jwt-issuer", "authql", "iss claim of access tokens", str(func(c *Config) *string { return &c.JWTIssuer })},
		{"APP_JWT_AUDIENCE", "jwt-audience", "authql", "aud claim of access tokens", str(func(c *Config) *string { return &c.JWTAudience })},
		{"APP_JWT_LEEWAY", "jwt-leeway", "30s", "clock skew tolerated when checking exp/iat", duration(func(c *Config) *time.Duration { return &c.JWTLeeway })},
		{"APP_ACCESS_TOKEN_TTL", "access-token-ttl", "15m", "access token lifetime", duration(func(c *Config) *time.Duration { return &c.AccessTTL })},
		{"APP_REFRESH_TOKEN_TTL", "refresh-token-ttl", "168h", "absolute session and refresh token lifetime", duration(func(c *Config) *time.Duration { return &c.RefreshTTL })},
		{"APP_SESSION_IDLE_TIMEOUT", "session-idle-timeout", "30m", "a session unused this long ends", duration(func(c *Config) *time.Duration { return &c.SessionIdle })},
		{"APP_REFRESH_REUSE_GRACE", "refresh-reuse-grace", "10s", "a rotated refresh token presented again within this window returns the same pair", duration(func(c *Config) *time.Duration { return &c.RefreshGrace })},
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
		{"APP_COMPLEXITY_LIMIT", "complexity-limit", "1000", "maximum computed complexity of an operation", integer(func(c *Config) *int { return &c.ComplexityLimit })},
		{"APP_SHUTDOWN_TIMEOUT", "shutdown-timeout", "20s", "how long in-flight requests may take to finish on SIGTERM", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"APP_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"APP_LOG_FORMAT", "log-format", "", "text or json (default: text in development, json in production)", str(func(c *Config) *string { return &c.LogFormat })},
	}
}

// loadConfig reads the configuration from getenv, then flags (which win),
// and returns every problem at once.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: server [flags]\n       server promote-admin [flags] EMAIL\n\n"+
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
	if c.Production() {
		c.LogFormat = "json"
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
	}
	errs = append(errs, c.validate()...)
	c.PasswordMemoryKiB, c.PasswordTime = 19*1024, 2
	return c, errors.Join(errs...)
}

// validate checks the values together. In production it refuses the
// development conveniences: an embedded Redis (sessions would live in one
// process), a generated key (tokens would die with it and differ per
// instance), a short key, and the default SQLite file.
func (c Config) validate() []error {
	var errs []error
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("APP_LOG_FORMAT: must be text or json, not %q", c.LogFormat))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("APP_JWT_SECRET: must be at least 32 bytes (256 bits) for HS256"))
	}
	for _, s := range c.JWTVerifySecrets {
		if len(s) < 32 {
			errs = append(errs, errors.New("APP_JWT_VERIFY_SECRETS: every secret must be at least 32 bytes"))
			break
		}
	}
	if c.AccessTTL <= 0 || c.RefreshTTL <= 0 || c.SessionIdle <= 0 {
		errs = append(errs, errors.New("token and session lifetimes must be positive"))
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Minute {
		errs = append(errs, errors.New("APP_REFRESH_REUSE_GRACE: must be between 0 and 1m"))
	}
	n := 0
	for _, set := range []bool{c.RedisURL != "", len(c.RedisClusterAddrs) > 0, len(c.RedisSentinelAddrs) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("set only one of REDIS_URL, APP_REDIS_CLUSTER_ADDRS and APP_REDIS_SENTINEL_ADDRS"))
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisMasterName == "" {
		errs = append(errs, errors.New("APP_REDIS_MASTER_NAME: required with APP_REDIS_SENTINEL_ADDRS"))
	}
	if c.Production() {
		if c.EmbeddedRedis() {
			errs = append(errs, errors.New("production: set REDIS_URL (or a cluster or sentinel): the embedded Redis keeps sessions in one process"))
		}
		if c.JWTSecret == "" {
			errs = append(errs, errors.New("production: set APP_JWT_SECRET (at least 32 random bytes): a generated key differs per instance and dies with the process"))
		}
		if c.DatabaseURL == "" {
			errs = append(errs, errors.New("production: set DATABASE_URL: the default SQLite file is for development"))
		}
	}
	return errs
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*field(c) = out
		return nil
	}
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

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration like 15m or 30s, not %q", v)
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
