package auth

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authql/authql/ent/schema/pulid"
)

// Fixed inputs, so that tokens minted from them (and the fuzz corpus built
// on them) are the same on every run.
var (
	testSecret  = []byte("tokens-test-secret-of-at-least-32-bytes")
	testEdKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testT0      = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	testUserID  = pulid.ID("US01HZX3W6Z3Q2M1D9Y7TQ4K5B8V")
	testSession = "SE01HZX3W6Z3Q2M1D9Y7TQ4K5B8W"
)

const (
	testIssuer   = "https://authql.test"
	testAudience = "authql-test"
	testTTL      = 15 * time.Minute
)

// testClock is an injected clock a test moves by hand.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

// testTokenConfig returns a config signing with the HMAC test key whose
// clock is c.
func testTokenConfig(c *testClock) TokenConfig {
	return TokenConfig{
		Issuer:   testIssuer,
		Audience: testAudience,
		TTL:      testTTL,
		Signing:  HMACKey(testSecret),
		Now:      c.Now,
	}
}

func mustNewTokens(tb testing.TB, cfg TokenConfig) *Tokens {
	tb.Helper()
	tk, err := NewTokens(cfg)
	if err != nil {
		tb.Fatalf("NewTokens: %v", err)
	}
	return tk
}

func mustIssue(tb testing.TB, tk *Tokens) (string, AccessClaims) {
	tb.Helper()
	tok, claims, err := tk.Issue(testUserID, testSession)
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok, claims
}

// testClaims are the claims Issue would write at now, with a fixed jti.
func testClaims(now time.Time) AccessClaims {
	return AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   string(testUserID),
			Audience:  jwt.ClaimStrings{testAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(testTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "fixed-jti-0123456789ab",
		},
		SessionID: testSession,
	}
}

// mustSign signs claims with method and key. header starts as Issue's
// (kid of the HMAC test key, typ at+jwt); a nil value in hdr deletes a
// header, any other value sets it.
func mustSign(tb testing.TB, method jwt.SigningMethod, key any, hdr map[string]any, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = HMACKey(testSecret).ID
	tok.Header["typ"] = AccessTokenType
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
			continue
		}
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

func TestTokensRoundTrip(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0.Add(500 * time.Millisecond)}
	tk := mustNewTokens(t, testTokenConfig(clock))
	tok, issued := mustIssue(t, tk)

	clock.t = clock.t.Add(time.Minute)
	got, err := tk.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got, want := got.Issuer, testIssuer; got != want {
		t.Errorf("iss=%v, want %v", got, want)
	}
	if got, want := strings.Join(got.Audience, ","), testAudience; got != want {
		t.Errorf("aud=%v, want %v", got, want)
	}
	if got, want := got.Subject, string(testUserID); got != want {
		t.Errorf("sub=%v, want %v", got, want)
	}
	if got, want := got.SessionID, testSession; got != want {
		t.Errorf("sid=%v, want %v", got, want)
	}
	// iat is truncated to the second, exp is iat+TTL.
	if got, want := got.IssuedAt.Time, testT0; !got.Equal(want) {
		t.Errorf("iat=%v, want %v", got, want)
	}
	if got, want := got.ExpiresAt.Time, testT0.Add(testTTL); !got.Equal(want) {
		t.Errorf("exp=%v, want %v", got, want)
	}
	if got, want := len(got.ID), 22; got != want {
		t.Errorf("len(jti)=%v, want %v", got, want)
	}
	if got, want := got.ID, issued.ID; got != want {
		t.Errorf("jti=%v, want %v (as issued)", got, want)
	}

	tok2, _ := mustIssue(t, tk)
	if tok2 == tok {
		t.Errorf("two tokens issued in the same second are identical: jti is not fresh")
	}
}

func TestTokensHeaders(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0}
	tk := mustNewTokens(t, testTokenConfig(clock))
	tok, _ := mustIssue(t, tk)
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &AccessClaims{})
	if err != nil {
		t.Fatalf("ParseUnverified: %v", err)
	}
	if got, want := parsed.Header["alg"], "HS256"; got != want {
		t.Errorf("alg=%v, want %v", got, want)
	}
	if got, want := parsed.Header["typ"], AccessTokenType; got != want {
		t.Errorf("typ=%v, want %v", got, want)
	}
	if got, want := parsed.Header["kid"], HMACKey(testSecret).ID; got != want {
		t.Errorf("kid=%v, want %v", got, want)
	}
}

func TestTokensExpiry(t *testing.T) {
	t.Parallel()
	exp := testT0.Add(testTTL)
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		at     time.Time
		want   error
	}{
		{"before exp", 0, exp.Add(-time.Second), nil},
		{"at exp", 0, exp, ErrTokenExpired},
		{"after exp", 0, exp.Add(time.Hour), ErrTokenExpired},
		{"within leeway", 30 * time.Second, exp.Add(29 * time.Second), nil},
		{"beyond leeway", 30 * time.Second, exp.Add(31 * time.Second), ErrTokenExpired},
		// iat is checked too: a token from the future is refused beyond the
		// leeway (the issuer's clock is wrong or the token is forged).
		{"iat ahead within leeway", 30 * time.Second, testT0.Add(-29 * time.Second), nil},
		{"iat ahead beyond leeway", 30 * time.Second, testT0.Add(-31 * time.Second), ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &testClock{t: testT0}
			cfg := testTokenConfig(clock)
			cfg.Leeway = tc.leeway
			tk := mustNewTokens(t, cfg)
			tok, _ := mustIssue(t, tk)

			clock.t = tc.at
			_, err := tk.Verify(tok)
			if got, want := err, tc.want; !errors.Is(got, want) {
				t.Errorf("Verify=%v, want %v", got, want)
			}
		})
	}
}

func TestTokensReject(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0.Add(time.Minute)}
	cfg := testTokenConfig(clock)
	// An EdDSA key on the allow-list, so that key confusion is possible at
	// all: the algorithm must match the key the kid names, not just the list.
	cfg.Verify = []Key{Ed25519PublicKey(testEdKey.Public().(ed25519.PublicKey))}
	tk := mustNewTokens(t, cfg)

	hs := jwt.SigningMethodHS256
	claims := testClaims(testT0)
	with := func(f func(c *AccessClaims)) AccessClaims {
		c := testClaims(testT0)
		f(&c)
		return c
	}
	edKID := cfg.Verify[0].ID
	edPub := []byte(testEdKey.Public().(ed25519.PublicKey))

	valid := mustSign(t, hs, testSecret, nil, claims)
	if _, err := tk.Verify(valid); err != nil {
		t.Fatalf("Verify(control token): %v", err)
	}
	parts := strings.Split(valid, ".")

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", valid + "." + parts[2]},
		{"alg none", mustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claims)},
		{"alg none without signature", parts[0] + "." + parts[1] + "."},
		{"HS512 same secret and kid", mustSign(t, jwt.SigningMethodHS512, testSecret, nil, claims)},
		{"HS384 same secret and kid", mustSign(t, jwt.SigningMethodHS384, testSecret, nil, claims)},
		{"EdDSA with the HMAC kid", mustSign(t, jwt.SigningMethodEdDSA, testEdKey, nil, claims)},
		{"HS256 keyed with the Ed25519 public key", mustSign(t, hs, edPub, map[string]any{"kid": edKID}, claims)},
		{"unknown kid", mustSign(t, hs, testSecret, map[string]any{"kid": "hs256-unknown"}, claims)},
		{"no kid", mustSign(t, hs, testSecret, map[string]any{"kid": nil}, claims)},
		{"kid not a string", mustSign(t, hs, testSecret, map[string]any{"kid": 1}, claims)},
		{"other secret", mustSign(t, hs, []byte("another-secret-of-at-least-32-bytes!!"), nil, claims)},
		{"no typ", mustSign(t, hs, testSecret, map[string]any{"typ": nil}, claims)},
		{"typ JWT", mustSign(t, hs, testSecret, map[string]any{"typ": "JWT"}, claims)},
		{"typ upper case", mustSign(t, hs, testSecret, map[string]any{"typ": "AT+JWT"}, claims)},
		{"jku", mustSign(t, hs, testSecret, map[string]any{"jku": "https://evil.example/jwks.json"}, claims)},
		{"x5u", mustSign(t, hs, testSecret, map[string]any{"x5u": "https://evil.example/cert.pem"}, claims)},
		{"jwk", mustSign(t, hs, testSecret, map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, claims)},
		{"x5c", mustSign(t, hs, testSecret, map[string]any{"x5c": []string{"MIIB"}}, claims)},
		{"crit", mustSign(t, hs, testSecret, map[string]any{"crit": []string{"exp"}}, claims)},
		{"empty crit", mustSign(t, hs, testSecret, map[string]any{"crit": []string{}}, claims)},
		{"no exp", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.ExpiresAt = nil }))},
		{"no iat", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.IssuedAt = nil }))},
		{"no iss", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Issuer = "" }))},
		{"wrong iss", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Issuer = "https://evil.example" }))},
		{"no aud", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Audience = nil }))},
		{"wrong aud", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Audience = jwt.ClaimStrings{"other-api"} }))},
		{"no sub", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Subject = "" }))},
		{"non-PULID sub", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Subject = "42" }))},
		{"lower-case prefix sub", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.Subject = "us" + string(testUserID[2:]) }))},
		{"empty sid", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.SessionID = "" }))},
		{"empty jti", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.ID = "" }))},
		{"nbf in the future", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.NotBefore = jwt.NewNumericDate(testT0.Add(time.Hour)) }))},
		{"tampered payload", parts[0] + "." + mustSign(t, hs, []byte("x"), nil, with(func(c *AccessClaims) { c.Subject = "US01HZX3W6Z3Q2M1D9Y7TQ4K5B8X" }))[len(parts[0])+1:]},
		{"truncated signature", valid[:len(valid)-1]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.ID = "x" })), ".")[2]},
		{"padded signature", valid + "="},
		// base64 decoders skip CR and LF; RFC 7515 allows no such characters,
		// and a token must have one spelling only.
		{"line feed in signature", valid[:len(valid)-5] + "\n" + valid[len(valid)-5:]},
		{"carriage return in signature", valid[:len(valid)-5] + "\r" + valid[len(valid)-5:]},
		{"trailing line feed", valid + "\n"},
		{"longer than 4096 bytes", mustSign(t, hs, testSecret, nil, with(func(c *AccessClaims) { c.SessionID = strings.Repeat("S", maxTokenLen) }))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			claims, err := tk.Verify(tc.token)
			if got, want := err, ErrInvalidToken; !errors.Is(got, want) {
				t.Errorf("Verify=%v, want %v", got, want)
			}
			if claims != nil {
				t.Errorf("claims=%+v, want nil", claims)
			}
		})
	}
}

// TestTokensMaxLen checks the length limit is on the token, not on the
// claims: a valid token just under it is accepted.
func TestTokensMaxLen(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0}
	tk := mustNewTokens(t, testTokenConfig(clock))
	base := mustSign(t, jwt.SigningMethodHS256, testSecret, nil, testClaims(testT0))
	// Every 3 bytes of sid add 4 bytes of base64.
	pad := (maxTokenLen - len(base)) / 4 * 3
	c := testClaims(testT0)
	c.SessionID += strings.Repeat("S", pad)
	tok := mustSign(t, jwt.SigningMethodHS256, testSecret, nil, c)
	if len(tok) > maxTokenLen {
		t.Fatalf("len(token)=%d, want at most %d", len(tok), maxTokenLen)
	}
	if _, err := tk.Verify(tok); err != nil {
		t.Errorf("Verify(%d bytes)=%v, want nil", len(tok), err)
	}
}

func TestTokensKeyRotation(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0}
	oldKey := HMACKey([]byte("old-secret-of-at-least-thirty-two-bytes"))
	newKey := HMACKey([]byte("new-secret-of-at-least-thirty-two-bytes"))
	if oldKey.ID == newKey.ID {
		t.Fatalf("two secrets share kid %s", oldKey.ID)
	}
	cfg := testTokenConfig(clock)
	cfg.Signing = oldKey
	oldTok, _ := mustIssue(t, mustNewTokens(t, cfg))

	cfg.Signing, cfg.Verify = newKey, []Key{oldKey}
	rotating := mustNewTokens(t, cfg)
	if _, err := rotating.Verify(oldTok); err != nil {
		t.Errorf("Verify(old token) during rotation=%v, want nil", err)
	}
	newTok, _ := mustIssue(t, rotating)
	if _, err := rotating.Verify(newTok); err != nil {
		t.Errorf("Verify(new token) during rotation=%v, want nil", err)
	}

	cfg.Verify = nil
	rotated := mustNewTokens(t, cfg)
	if _, err := rotated.Verify(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(old token) after rotation=%v, want %v", err, ErrInvalidToken)
	}
	if _, err := rotated.Verify(newTok); err != nil {
		t.Errorf("Verify(new token) after rotation=%v, want nil", err)
	}
}

func TestTokensEd25519(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0}
	cfg := testTokenConfig(clock)
	cfg.Signing = Ed25519Key(testEdKey)
	tk := mustNewTokens(t, cfg)
	tok, _ := mustIssue(t, tk)
	if _, err := tk.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &AccessClaims{})
	if err != nil {
		t.Fatalf("ParseUnverified: %v", err)
	}
	if got, want := parsed.Header["alg"], "EdDSA"; got != want {
		t.Errorf("alg=%v, want %v", got, want)
	}

	keys := tk.Keys()
	if got, want := len(keys), 1; got != want {
		t.Fatalf("len(Keys())=%v, want %v", got, want)
	}
	k := keys[0]
	if got, want := k.ID, cfg.Signing.ID; got != want {
		t.Errorf("Keys()[0].ID=%v, want %v", got, want)
	}
	if got, want := k.Public(), testEdKey.Public().(ed25519.PublicKey); !got.Equal(want) {
		t.Errorf("Keys()[0].Public()=%x, want %x", got, want)
	}
	if k.sign != nil {
		t.Errorf("Keys()[0] holds a signing key (%T)", k.sign)
	}
	// The exposed key cannot be used to sign.
	cfg.Signing = k
	if _, err := NewTokens(cfg); err == nil {
		t.Errorf("NewTokens(signing key from Keys())=nil error, want refusal")
	}
	// A public key on its own verifies.
	cfg.Signing = HMACKey(testSecret)
	cfg.Verify = []Key{Ed25519PublicKey(testEdKey.Public().(ed25519.PublicKey))}
	if _, err := mustNewTokens(t, cfg).Verify(tok); err != nil {
		t.Errorf("Verify with the public key=%v, want nil", err)
	}
}

func TestTokensKeysHMAC(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: testT0}
	cfg := testTokenConfig(clock)
	old := HMACKey([]byte("old-secret-of-at-least-thirty-two-bytes"))
	cfg.Verify = []Key{old, cfg.Signing} // the signing key listed again
	keys := mustNewTokens(t, cfg).Keys()
	if got, want := len(keys), 2; got != want {
		t.Fatalf("len(Keys())=%v, want %v", got, want)
	}
	for i, want := range []string{cfg.Signing.ID, old.ID} {
		if got := keys[i].ID; got != want {
			t.Errorf("Keys()[%d].ID=%v, want %v", i, got, want)
		}
		if keys[i].sign != nil {
			t.Errorf("Keys()[%d] can sign", i)
		}
		if keys[i].Public() != nil {
			t.Errorf("Keys()[%d].Public()=%x, want nil for an HMAC key", i, keys[i].Public())
		}
	}
}

func TestNewTokensRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*TokenConfig)
	}{
		{"verify-only signing key", func(c *TokenConfig) { c.Signing = c.Signing.VerifyOnly() }},
		{"public Ed25519 signing key", func(c *TokenConfig) { c.Signing = Ed25519PublicKey(testEdKey.Public().(ed25519.PublicKey)) }},
		{"no signing key", func(c *TokenConfig) { c.Signing = Key{} }},
		{"no issuer", func(c *TokenConfig) { c.Issuer = "" }},
		{"no audience", func(c *TokenConfig) { c.Audience = "" }},
		{"no TTL", func(c *TokenConfig) { c.TTL = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testTokenConfig(&testClock{t: testT0})
			tc.mod(&cfg)
			if _, err := NewTokens(cfg); err == nil {
				t.Errorf("NewTokens=nil error, want refusal")
			}
		})
	}
}
