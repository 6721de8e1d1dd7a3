package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/ent/entdb"
)

// Everything the configuration says is checked here, before anything is
// opened, created or connected: a refused configuration leaves no trace.

// validate checks the values together. In production it refuses the
// development conveniences: an embedded Redis (sessions would live in one
// process), a generated key (tokens would die with it and differ per
// instance), a short key, and the default SQLite file; and the weak
// settings development only warns about (hardening.go).
func (c Config) validate() []error {
	var errs []error
	if err := checkListenAddr(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("APP_ADDR: %w", err))
	}
	if c.MetricsAddr != "" {
		if err := checkListenAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("APP_METRICS_ADDR: %w", err))
		}
	}
	if c.Pprof && c.MetricsAddr == "" {
		errs = append(errs, errors.New("APP_PPROF: needs APP_METRICS_ADDR: profiles are served on the metrics listener only, never on APP_ADDR"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("APP_LOG_LEVEL: must be debug, info, warn or error, not %q", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("APP_LOG_FORMAT: must be text or json, not %q", c.LogFormat))
	}
	if c.EncryptionKey != "" && len(c.EncryptionKey) < 32 {
		errs = append(errs, errors.New("APP_ENCRYPTION_KEY: must be at least 32 bytes"))
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
	if c.JWTEd25519Key != "" {
		if _, err := auth.ParseEd25519Private(c.JWTEd25519Key); err != nil {
			errs = append(errs, fmt.Errorf("APP_JWT_ED25519_KEY: %w", err))
		}
	}
	for _, k := range c.JWTEd25519Verify {
		if _, err := auth.ParseEd25519Public(k); err != nil {
			errs = append(errs, fmt.Errorf("APP_JWT_ED25519_VERIFY_KEYS: %w", err))
			break
		}
	}
	if c.AccessTTL <= 0 || c.RefreshTTL <= 0 || c.SessionIdle <= 0 {
		errs = append(errs, errors.New("token and session lifetimes must be positive"))
	}
	if c.StartupTimeout <= 0 {
		errs = append(errs, errors.New("APP_STARTUP_TIMEOUT: must be positive"))
	}
	if c.RedisTimeout <= 0 {
		errs = append(errs, errors.New("APP_REDIS_TIMEOUT: must be positive"))
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Minute {
		errs = append(errs, errors.New("APP_REFRESH_REUSE_GRACE: must be between 0 and 1m"))
	}
	if c.DatabaseURL != "" {
		if _, err := entdb.Parse(c.DatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("DATABASE_URL: %w", err))
		}
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
	errs = append(errs, c.redisProblems()...)
	if c.CacheRedisURL != "" {
		if _, err := redis.ParseURL(c.CacheRedisURL); err != nil {
			errs = append(errs, fmt.Errorf("APP_CACHE_REDIS_URL: %w", err))
		}
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisMasterName == "" {
		errs = append(errs, errors.New("APP_REDIS_MASTER_NAME: required with APP_REDIS_SENTINEL_ADDRS"))
	}
	for _, o := range c.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("APP_CORS_ORIGINS: %w", err))
		}
	}
	errs = append(errs, c.mailProblems()...)
	if c.Production() {
		if c.EmbeddedRedis() {
			errs = append(errs, errors.New("production: set REDIS_URL (or a cluster or sentinel): the embedded Redis keeps sessions in one process"))
		}
		if c.JWTSecret == "" && c.JWTEd25519Key == "" {
			errs = append(errs, errors.New("production: set APP_JWT_SECRET (at least 32 random bytes) or APP_JWT_ED25519_KEY: a generated key differs per instance and dies with the process"))
		}
		if c.EncryptionKey == "" {
			errs = append(errs, errors.New("production: set APP_ENCRYPTION_KEY (at least 32 random bytes, `server gen-secret`): the development key is public"))
		}
		if c.DatabaseURL == "" {
			errs = append(errs, errors.New("production: set DATABASE_URL: the default SQLite file is for development"))
		}
		errs = append(errs, c.productionProblems()...)
	}
	return errs
}

// mailProblems checks the mail settings. Production needs a mail server
// (without one, the tokens of links would be written to the log) and the
// public URL links are built from.
func (c Config) mailProblems() []error {
	var errs []error
	if c.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(c.SMTPURL); err != nil {
			errs = append(errs, fmt.Errorf("APP_SMTP_URL: %w", err))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("APP_PUBLIC_URL: %q is not a base URL (scheme://host[:port][/path], e.g. https://app.example.com)", c.PublicURL))
		}
	}
	if _, err := netmail.ParseAddress(c.MailFrom); err != nil {
		errs = append(errs, fmt.Errorf("APP_MAIL_FROM: %q is not an address (a@example.com or Name <a@example.com>)", c.MailFrom))
	}
	if c.Production() {
		if c.SMTPURL == "" {
			errs = append(errs, errors.New("production: set APP_SMTP_URL: without a mail server, mails (and the tokens of their links) go to the log"))
		}
		if c.PublicURL == "" {
			errs = append(errs, errors.New("production: set APP_PUBLIC_URL: the links of mails are built from it"))
		}
	}
	return errs
}

// unknownSettings describes each APP_ variable of environ that is not a
// setting, naming the setting closest to it. Only the APP_ prefix is ours:
// OTEL_*, PG*, HOME and the rest belong to others.
func unknownSettings(table []setting, environ []string) []string {
	known := map[string]bool{}
	for _, s := range table {
		known[s.env] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "APP_") || known[name] {
			continue
		}
		closest, best := "", -1
		for _, s := range table {
			if d := editDistance(name, s.env); best < 0 || d < best {
				closest, best = s.env, d
			}
		}
		out = append(out, fmt.Sprintf("%s is not a setting (did you mean %s? `server -h` lists them all)", name, closest))
	}
	sort.Strings(out)
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (setting names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// redisProblems checks the Redis settings without connecting.
func (c Config) redisProblems() []error {
	var errs []error
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_URL: %w", err))
		}
	}
	for _, l := range []struct {
		env   string
		addrs []string
	}{{"APP_REDIS_CLUSTER_ADDRS", c.RedisClusterAddrs}, {"APP_REDIS_SENTINEL_ADDRS", c.RedisSentinelAddrs}} {
		for _, a := range l.addrs {
			if err := checkNodeAddr(a); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", l.env, err))
			}
		}
	}
	return errs
}

// checkListenAddr checks an address to listen on: host:port or :port, the
// port a number from 0 (any free port) to 65535. net.Listen would say so
// too, but only once the database had been opened.
func checkListenAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("must be host:port or :port, not %q", a)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("the port must be a number from 0 to 65535, not %q", port)
	}
	return nil
}

// checkNodeAddr checks the address of a server to connect to: host:port,
// both given, the port from 1 to 65535.
func checkNodeAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("must be host:port, not %q", a)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("the port must be a number from 1 to 65535, not %q", port)
	}
	return nil
}

// checkOrigin checks a browser origin: scheme://host[:port], nothing after
// (a browser's Origin header never has a path, so
// "https://app.example.com/" would never match), or "*".
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%q is not an origin (scheme://host[:port], e.g. https://app.example.com)", o)
	case u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return fmt.Errorf("%q is not an origin: only scheme://host[:port], without a path or a trailing slash", o)
	}
	return nil
}
