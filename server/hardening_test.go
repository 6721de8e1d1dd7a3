package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// strongSecret is 32 random-looking bytes, base64: what production wants.
const strongSecret = "q3Jx8m0ZP1y7nE2c4VtK9bWs6aHgLd5uRf0iOe3Mj8Y="

// productionBase is a production configuration production accepts.
func productionBase() map[string]string {
	return map[string]string{"APP_ENV": "production", "APP_JWT_SECRET": strongSecret,
		"APP_ENCRYPTION_KEY": strongSecret, "REDIS_URL": "redis://r:6379", "DATABASE_URL": "postgres://db/app",
		"APP_SMTP_URL": "smtp://mailer:secret@smtp.example.com:587", "APP_PUBLIC_URL": "https://app.example.com"}
}

func loadWith(env map[string]string) (Config, error) {
	getenv, environ := mapEnv(env)
	return loadConfig(nil, getenv, environ, io.Discard)
}

// Production refuses every setting that turns a protection off or makes a
// credential weak, and says what to do instead; development accepts the
// same values and warns.
func TestConfigProductionRefusesWeakSettings(t *testing.T) {
	if _, err := loadWith(productionBase()); err != nil {
		t.Fatalf("the base production configuration is refused: %v", err)
	}
	tests := []struct {
		name, env, value string
		want             []string // what the refusal must say
	}{
		{"32-character passphrase", "APP_JWT_SECRET", "correct horse battery staple 123", []string{"APP_JWT_SECRET", "32 random bytes", "gen-secret"}},
		{"long passphrase", "APP_JWT_SECRET", "this is my very long and memorable passphrase!", []string{"APP_JWT_SECRET", "base64"}},
		{"short base64", "APP_JWT_SECRET", base64.StdEncoding.EncodeToString(make([]byte, 31)) + "  ", []string{"APP_JWT_SECRET"}},
		{"hex of 22 bytes (valid base64 of 33)", "APP_JWT_SECRET", strings.Repeat("ab", 22), []string{"APP_JWT_SECRET"}},
		{"weak verify secret", "APP_JWT_VERIFY_SECRETS", strongSecret + ",old-passphrase-of-thirty-two-bytes!!", []string{"APP_JWT_VERIFY_SECRETS"}},
		{"fields guard off", "APP_MAX_FIELDS", "0", []string{"APP_MAX_FIELDS", "set a number"}},
		{"depth unbounded", "APP_MAX_DEPTH", "0", []string{"APP_MAX_DEPTH"}},
		{"complexity unbounded", "APP_COMPLEXITY_LIMIT", "0", []string{"APP_COMPLEXITY_LIMIT"}},
		{"tokens unbounded", "APP_MAX_TOKENS", "0", []string{"APP_MAX_TOKENS"}},
		{"api rate off", "APP_RATE_API", "off", []string{"APP_RATE_API", "raise it instead"}},
		{"login rate 0", "APP_RATE_LOGIN_ACCOUNT", "0", []string{"APP_RATE_LOGIN_ACCOUNT"}},
		{"login ip rate off", "APP_RATE_LOGIN_IP", "off", []string{"APP_RATE_LOGIN_IP"}},
		{"register rate off", "APP_RATE_REGISTER_IP", "off", []string{"APP_RATE_REGISTER_IP"}},
		{"leeway of an hour", "APP_JWT_LEEWAY", "1h", []string{"APP_JWT_LEEWAY", "5m"}},
		{"day-long access tokens", "APP_ACCESS_TOKEN_TTL", "24h", []string{"APP_ACCESS_TOKEN_TTL", "1h"}},
		{"year-long sessions", "APP_REFRESH_TOKEN_TTL", "8760h", []string{"APP_REFRESH_TOKEN_TTL", "90 days"}},
		{"idle longer than the session", "APP_SESSION_IDLE_TIMEOUT", "200h", []string{"APP_SESSION_IDLE_TIMEOUT"}},
		{"unauthenticated sockets uncapped", "APP_WS_MAX_UNAUTHENTICATED_PER_IP", "0", []string{"APP_WS_MAX_UNAUTHENTICATED_PER_IP"}},
		{"responses unbounded", "APP_WRITE_TIMEOUT", "0s", []string{"APP_WRITE_TIMEOUT"}},
		{"metrics on the API port", "APP_METRICS_ADDR", ":8080", []string{"APP_METRICS_ADDR", "public port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := productionBase()
			env[tc.env] = tc.value
			_, err := loadWith(env)
			if err == nil {
				t.Fatalf("production accepted %s=%q", tc.env, tc.value)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
			// Development keeps the relaxed value, with a warning.
			env["APP_ENV"] = "development"
			cfg, err := loadWith(env)
			if err != nil {
				t.Fatalf("development refused %s=%q: %v", tc.env, tc.value, err)
			}
			if tc.env == "APP_METRICS_ADDR" {
				return // development serves /metrics on the API port anyway
			}
			if w := strings.Join(cfg.warnings(), "\n"); !strings.Contains(w, tc.env) {
				t.Errorf("development does not warn about %s; warnings:\n%s", tc.env, w)
			}
		})
	}
}

// The secrets production accepts: at least 32 bytes once decoded, in the
// forms people generate them.
func TestConfigProductionAcceptsRandomSecrets(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	for name, secret := range map[string]string{
		"std base64":              base64.StdEncoding.EncodeToString(raw),
		"std base64 unpadded":     base64.RawStdEncoding.EncodeToString(raw),
		"url base64":              base64.URLEncoding.EncodeToString(append(raw, 0xfb, 0xff)),
		"url base64 unpadded":     base64.RawURLEncoding.EncodeToString(append(raw, 0xfb, 0xff)),
		"hex":                     "8f" + strings.Repeat("0123456789abcdef", 3) + "0123456789abcd",
		"openssl rand -base64 48": base64.StdEncoding.EncodeToString(append(raw, raw[:16]...)),
	} {
		t.Run(name, func(t *testing.T) {
			env := productionBase()
			env["APP_JWT_SECRET"] = secret
			if _, err := loadWith(env); err != nil {
				t.Errorf("refused %q: %v", secret, err)
			}
		})
	}
}

// Production keeps /metrics off the public port by default; development
// keeps serving it there.
func TestConfigMetricsAddrDefaults(t *testing.T) {
	cfg, err := loadWith(productionBase())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.MetricsAddr, "127.0.0.1:9090"; got != want {
		t.Errorf("production MetricsAddr=%q, want %q", got, want)
	}
	cfg, err = loadWith(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.MetricsAddr, ""; got != want {
		t.Errorf("development MetricsAddr=%q, want %q (on APP_ADDR)", got, want)
	}
}

func TestGenSecretIsAccepted(t *testing.T) {
	var out bytes.Buffer
	if err := runWith(t.Context(), []string{"gen-secret"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	secret, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "APP_JWT_SECRET=")
	if !ok {
		t.Fatalf("gen-secret printed %q", out.String())
	}
	env := productionBase()
	env["APP_JWT_SECRET"] = secret
	if _, err := loadWith(env); err != nil {
		t.Errorf("production refuses the generated secret: %v", err)
	}
}
