package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/authql/authql/auth"
)

// Bounds production holds the configuration to; development accepts more
// and warns (weakSettings).
const (
	// minSecretBytes is the HS256 key size RFC 7518 §3.2 asks for, counted
	// after decoding: the secret must be that many random bytes.
	minSecretBytes = 32
	// maxLeeway: past a few minutes, clock skew is a broken clock, and an
	// expired token would be accepted that much longer.
	maxLeeway = 5 * time.Minute
	// maxAccessTTL bounds how long a stolen access token works (revocation
	// aside): an access token is a bearer credential.
	maxAccessTTL = time.Hour
	// maxRefreshTTL bounds how long a session may live without a new login.
	maxRefreshTTL = 90 * 24 * time.Hour
	// defaultProductionMetricsAddr keeps /metrics off the public port in
	// production unless APP_METRICS_ADDR says where it goes.
	defaultProductionMetricsAddr = "127.0.0.1:9090"
)

// weakSettings lists what production refuses and development only warns
// about, each with what to do instead.
func (c Config) weakSettings() []string {
	out := append([]string(nil), c.unknown...)
	if c.JWTSecret != "" && secretBytes(c.JWTSecret) < minSecretBytes {
		out = append(out, "APP_JWT_SECRET: must be at least 32 random bytes, base64- or hex-encoded "+
			"(`server gen-secret` or `openssl rand -base64 32` makes one); a passphrase is not random, whatever its length")
	}
	if c.EncryptionKey != "" && secretBytes(c.EncryptionKey) < minSecretBytes {
		out = append(out, "APP_ENCRYPTION_KEY: must be at least 32 random bytes, base64- or hex-encoded "+
			"(`server gen-secret` makes one); a passphrase is not random, whatever its length")
	}
	for _, s := range c.JWTVerifySecrets {
		if secretBytes(s) < minSecretBytes {
			out = append(out, "APP_JWT_VERIFY_SECRETS: every secret must be at least 32 random bytes, base64- or hex-encoded; "+
				"a weak old secret still lets anyone who guesses it mint tokens")
			break
		}
	}
	for _, l := range []struct {
		env string
		n   int
	}{
		{"APP_MAX_DEPTH", c.Limits.MaxDepth}, {"APP_MAX_FIELDS", c.Limits.MaxFields},
		{"APP_COMPLEXITY_LIMIT", c.Limits.MaxComplexity}, {"APP_MAX_TOKENS", c.Limits.MaxTokens},
		{"APP_WS_MAX_UNAUTHENTICATED_PER_IP", c.WSMaxPendingPerIP}, {"APP_WRITE_TIMEOUT", int(c.WriteTimeout)},
	} {
		if l.n == 0 {
			out = append(out, l.env+": 0 removes the limit; set a number (a higher one if the default is too low)")
		}
	}
	for _, env := range c.ratesOff {
		out = append(out, env+": off removes the rate limit; raise it instead (e.g. 100000/1m)")
	}
	if c.JWTLeeway > maxLeeway {
		out = append(out, fmt.Sprintf("APP_JWT_LEEWAY: at most %s (an expired token is accepted that much longer); fix the clocks instead", shortDuration(maxLeeway)))
	}
	if c.AccessTTL > maxAccessTTL {
		out = append(out, fmt.Sprintf("APP_ACCESS_TOKEN_TTL: at most %s; clients refresh instead", shortDuration(maxAccessTTL)))
	}
	if c.RefreshTTL > maxRefreshTTL {
		out = append(out, fmt.Sprintf("APP_REFRESH_TOKEN_TTL: at most %s (90 days); users sign in again after it", shortDuration(maxRefreshTTL)))
	}
	if c.SessionIdle > c.RefreshTTL {
		out = append(out, "APP_SESSION_IDLE_TIMEOUT: must not exceed APP_REFRESH_TOKEN_TTL (a session never outlives its absolute lifetime)")
	}
	return out
}

// warnings are weakSettings in development, where they are allowed.
func (c Config) warnings() []string {
	if c.Production() {
		return nil // refused by validate
	}
	ws := c.weakSettings()
	for i := range ws {
		ws[i] += " (production refuses this)"
	}
	return ws
}

// productionProblems are the refusals of production mode beyond the
// embedded defaults.
func (c Config) productionProblems() []error {
	var errs []error
	for _, w := range c.weakSettings() {
		errs = append(errs, fmt.Errorf("production: %s", w))
	}
	if sameListener(c.MetricsAddr, c.Addr) {
		errs = append(errs, fmt.Errorf("production: APP_METRICS_ADDR (%s) must not be APP_ADDR: metrics stay off the public port (default %s)",
			c.MetricsAddr, defaultProductionMetricsAddr))
	}
	return errs
}

// secretBytes is how many bytes the secret decodes to: as hex if it is only
// hex digits (hex is also valid base64, which would count it as longer than
// it is), else as base64 in any of its four forms. 0 if it decodes as none.
func secretBytes(s string) int {
	s = strings.TrimSpace(s)
	if strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		if b, err := hex.DecodeString(s); err == nil {
			return len(b)
		}
		return len(s) / 2
	}
	best := 0
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > best {
			best = len(b)
		}
	}
	return best
}

// sameListener reports whether two listen addresses would take the same
// port on the same interface (a wildcard host takes every interface).
func sameListener(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// isRateSetting reports whether s is a rate limit (its default is one), so
// that its "off" can be refused in production whichever limit it is.
func isRateSetting(s setting) bool {
	r, err := auth.ParseRate(s.def)
	return err == nil && r.N > 0
}
