package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// mapEnv is the environment m as the program reads it: one variable, or
// the list of them all.
func mapEnv(m map[string]string) (getenv func(string) string, environ func() []string) {
	return func(k string) string { return m[k] }, func() []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		return out
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadWith(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want any }{
		"env":          {cfg.Env, "development"},
		"addr":         {cfg.Addr, ":8080"},
		"access ttl":   {cfg.AccessTTL, 15 * time.Minute},
		"refresh ttl":  {cfg.RefreshTTL, 7 * 24 * time.Hour},
		"idle":         {cfg.SessionIdle, 30 * time.Minute},
		"grace":        {cfg.RefreshGrace, 10 * time.Second},
		"body limit":   {cfg.BodyLimit, int64(1 << 20)},
		"playground":   {cfg.Playground, true},
		"introspect":   {cfg.Introspection, true},
		"embedded":     {cfg.EmbeddedRedis(), true},
		"log format":   {cfg.LogFormat, "text"},
		"database url": {cfg.DatabaseURL, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s=%v, want %v", name, c.got, c.want)
		}
	}
}

func TestConfigFlagsOverrideEnv(t *testing.T) {
	getenv, environ := mapEnv(map[string]string{"APP_ADDR": ":9000", "APP_ACCESS_TOKEN_TTL": "5m"})
	cfg, err := loadConfig([]string{"-addr", "127.0.0.1:7000"}, getenv, environ, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Addr, "127.0.0.1:7000"; got != want {
		t.Errorf("addr=%q, want %q", got, want)
	}
	if got, want := cfg.AccessTTL, 5*time.Minute; got != want {
		t.Errorf("access ttl=%v, want %v", got, want)
	}
}

// Production refuses every development convenience, and says all that is
// wrong at once.
func TestConfigProductionRefusesDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"all defaults", map[string]string{"APP_ENV": "production"},
			[]string{"REDIS_URL", "APP_JWT_SECRET", "DATABASE_URL", "APP_SMTP_URL", "APP_PUBLIC_URL", "APP_ENCRYPTION_KEY"}},
		{"bad smtp url", map[string]string{"APP_SMTP_URL": "http://mail.example.com"}, []string{"APP_SMTP_URL", "smtp or smtps"}},
		{"implicit tls off", map[string]string{"APP_SMTP_URL": "smtps://mail.example.com?tls=none"}, []string{"APP_SMTP_URL"}},
		{"bad public url", map[string]string{"APP_PUBLIC_URL": "app.example.com"}, []string{"APP_PUBLIC_URL"}},
		{"bad sender", map[string]string{"APP_MAIL_FROM": "nobody"}, []string{"APP_MAIL_FROM"}},
		{"short key", map[string]string{"APP_ENV": "production", "APP_JWT_SECRET": "short",
			"REDIS_URL": "redis://r:6379", "DATABASE_URL": "postgres://db/app"}, []string{"at least 32 bytes"}},
		{"bad duration", map[string]string{"APP_ACCESS_TOKEN_TTL": "soon"}, []string{"APP_ACCESS_TOKEN_TTL"}},
		{"bad env", map[string]string{"APP_ENV": "staging"}, []string{"APP_ENV"}},
		{"two redis modes", map[string]string{"REDIS_URL": "redis://r:6379", "APP_REDIS_CLUSTER_ADDRS": "a:1,b:2"}, []string{"only one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	cfg, err := loadWith(productionBase())
	if err != nil {
		t.Fatalf("complete production config refused: %v", err)
	}
	if !cfg.RequireVerifiedEmail {
		t.Error("production does not require verified addresses by default")
	}
	if cfg.Playground || cfg.Introspection || cfg.LogFormat != "json" {
		t.Errorf("production defaults: playground=%v introspection=%v log=%s", cfg.Playground, cfg.Introspection, cfg.LogFormat)
	}
}

// A DATABASE_URL of a database we do not speak is refused with the forms
// we do, instead of being taken for a SQLite file name.
func TestConfigRefusesUnknownDatabaseScheme(t *testing.T) {
	for _, dsn := range []string{"mysql://root@127.0.0.1/x", "mongodb+srv://cluster0/app", "sqlserver:host"} {
		t.Run(dsn, func(t *testing.T) {
			_, err := loadWith(map[string]string{"DATABASE_URL": dsn})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range []string{"DATABASE_URL", "unknown scheme", "postgres://", "sqlite:PATH"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	for _, dsn := range []string{"./data/app.db", "sqlite:/tmp/app.db", "postgres://db/app"} {
		if _, err := loadWith(map[string]string{"DATABASE_URL": dsn}); err != nil {
			t.Errorf("DATABASE_URL=%s refused: %v", dsn, err)
		}
	}
}

// An APP_ variable that is no setting is a misspelled one: development
// warns, naming the closest setting; production refuses to start. Other
// prefixes are not ours and pass unremarked.
func TestConfigUnknownSettings(t *testing.T) {
	others := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "PGHOST": "db",
		"HOME": "/root", "APPLICATION_NAME": "x", "APP": "x", "app_env": "x"}
	t.Run("development warns", func(t *testing.T) {
		env := map[string]string{"APP_JWT_SECERT": strongSecret, "APP_REQURE_HTTPS": "false"}
		for k, v := range others {
			env[k] = v
		}
		cfg, err := loadWith(env)
		if err != nil {
			t.Fatalf("refused in development: %v", err)
		}
		warnings := strings.Join(cfg.warnings(), "\n")
		for _, want := range []string{
			"APP_JWT_SECERT is not a setting (did you mean APP_JWT_SECRET?",
			"APP_REQURE_HTTPS is not a setting (did you mean APP_REQUIRE_HTTPS?",
		} {
			if !strings.Contains(warnings, want) {
				t.Errorf("warnings do not say %q:\n%s", want, warnings)
			}
		}
		for k := range others {
			if strings.Contains(warnings, k+" ") {
				t.Errorf("warnings flag %s, which is not ours:\n%s", k, warnings)
			}
		}
	})
	t.Run("production refuses", func(t *testing.T) {
		env := productionBase()
		env["APP_REQURE_HTTPS"] = "false"
		for k, v := range others {
			env[k] = v
		}
		_, err := loadWith(env)
		if err == nil {
			t.Fatal("accepted")
		}
		if want := "production: APP_REQURE_HTTPS is not a setting (did you mean APP_REQUIRE_HTTPS?"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		for k := range others {
			if strings.Contains(err.Error(), k+" ") {
				t.Errorf("error flags %s, which is not ours: %v", k, err)
			}
		}
	})
}

// Through the real program: a misspelled setting in production stops it
// before it starts.
func TestRunRefusesMisspelledSettingInProduction(t *testing.T) {
	env := productionBase()
	env["APP_ADDR"], env["APP_METRICS_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"
	env["APP_JWT_SECERT"] = strongSecret
	err := runWith(context.Background(), nil, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "did you mean APP_JWT_SECRET?") {
		t.Fatalf("run with APP_JWT_SECERT in production: err=%v", err)
	}
}

// Every value is checked when the configuration is read, not when it is
// first used: a listen address, a Redis node, a log level, an origin, a
// negative duration.
func TestConfigRefusesBadValues(t *testing.T) {
	tests := []struct {
		env, value string
		want       string
	}{
		{"APP_ADDR", ":99999", "0 to 65535"},
		{"APP_ADDR", "8080", "host:port"},
		{"APP_ADDR", ":http", "0 to 65535"},
		{"APP_METRICS_ADDR", "127.0.0.1:70000", "APP_METRICS_ADDR"},
		{"REDIS_URL", "http://redis:6379", "REDIS_URL"},
		{"REDIS_URL", "redis://redis:port", "REDIS_URL"},
		{"APP_REDIS_CLUSTER_ADDRS", "r1:7001,r2", "must be host:port"},
		{"APP_REDIS_SENTINEL_ADDRS", ":26379", "must be host:port"},
		{"APP_REDIS_SENTINEL_ADDRS", "s1:0", "1 to 65535"},
		{"APP_LOG_LEVEL", "verbose", "debug, info, warn or error"},
		{"APP_CORS_ORIGINS", "https://app.example.com/", "trailing slash"},
		{"APP_CORS_ORIGINS", "app.example.com", "not an origin"},
		{"APP_CORS_ORIGINS", "https://app.example.com/login", "without a path"},
		{"APP_WS_PING_INTERVAL", "-1s", "negative"},
		{"APP_SHUTDOWN_TIMEOUT", "-5s", "negative"},
		{"APP_CACHE_PAGE_TTL", "-1m", "negative"},
		{"APP_WRITE_TIMEOUT", "-30s", "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			env := map[string]string{tc.env: tc.value}
			if tc.env == "APP_REDIS_SENTINEL_ADDRS" {
				env["APP_REDIS_MASTER_NAME"] = "authql"
			}
			_, err := loadWith(env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range []string{tc.env, tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	for k, v := range map[string]string{"APP_ADDR": "[::1]:0", "APP_METRICS_ADDR": "localhost:9090",
		"APP_CORS_ORIGINS":        "https://app.example.com:8443, http://localhost:5173, *",
		"APP_REDIS_CLUSTER_ADDRS": "r1:7001,[::1]:7002", "APP_LOG_LEVEL": "DEBUG", "APP_WRITE_TIMEOUT": "0s"} {
		if _, err := loadWith(map[string]string{k: v}); err != nil {
			t.Errorf("%s=%s refused: %v", k, v, err)
		}
	}
}
