package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authql/authql/cache/memo"
	"github.com/authql/authql/ent/schema/pulid"
)

// AccessTokenType is the JWT "typ" header of access tokens (RFC 9068). A
// token without it is refused, so no other JWT signed with the same key (and
// never a refresh token, which is not a JWT at all) passes as an access token.
const AccessTokenType = "at+jwt"

// maxTokenLen bounds the work spent on a presented token before any parsing.
const maxTokenLen = 4096

// Key is one signing or verification key. A key with only its public half
// (Ed25519) or loaded as "verify only" verifies but never signs.
type Key struct {
	// ID is the "kid" header value naming this key.
	ID     string
	method jwt.SigningMethod
	sign   any // []byte or ed25519.PrivateKey; nil for verify-only keys
	verify any // []byte or ed25519.PublicKey
}

// HMACKey returns an HS256 key. Its ID is derived from a hash of the secret,
// so every instance given the same secret names it the same way.
func HMACKey(secret []byte) Key {
	sum := sha256.Sum256(append([]byte("authql kid\x00"), secret...))
	return Key{
		ID:     "hs256-" + base64.RawURLEncoding.EncodeToString(sum[:9]),
		method: jwt.SigningMethodHS256,
		sign:   secret,
		verify: secret,
	}
}

// Ed25519Key returns an EdDSA key from a private key.
func Ed25519Key(priv ed25519.PrivateKey) Key {
	pub := priv.Public().(ed25519.PublicKey)
	k := Ed25519PublicKey(pub)
	k.sign = priv
	return k
}

// Ed25519PublicKey returns a verify-only EdDSA key.
func Ed25519PublicKey(pub ed25519.PublicKey) Key {
	sum := sha256.Sum256(pub)
	return Key{
		ID:     "ed25519-" + base64.RawURLEncoding.EncodeToString(sum[:9]),
		method: jwt.SigningMethodEdDSA,
		verify: pub,
	}
}

// VerifyOnly returns a copy of k that cannot sign.
func (k Key) VerifyOnly() Key {
	k.sign = nil
	return k
}

// Public returns the Ed25519 public key, or nil for an HMAC key.
func (k Key) Public() ed25519.PublicKey {
	pub, _ := k.verify.(ed25519.PublicKey)
	return pub
}

// TokenConfig configures access tokens.
type TokenConfig struct {
	Issuer   string
	Audience string
	// TTL is the lifetime of an access token (15 minutes by default).
	TTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// Signing signs new tokens; Verify lists further keys that are still
	// accepted (the previous key during a rotation).
	Signing Key
	Verify  []Key
	Now     func() time.Time
}

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	jwt.RegisteredClaims
	// SessionID names the session the token belongs to.
	SessionID string `json:"sid"`
	// AMR lists how the session's sign-in was authenticated (RFC 8176):
	// ["pwd"], or ["pwd","otp"] after a second factor. A token without it
	// (issued before the claim existed) counts as ["pwd"].
	AMR []string `json:"amr,omitempty"`
}

// Tokens issues and verifies access tokens.
type Tokens struct {
	cfg    TokenConfig
	keys   map[string]Key
	parser *jwt.Parser
	// verified remembers tokens whose signature and claims were checked, so
	// a token used for many requests is parsed and its HMAC or EdDSA
	// signature computed once. A token is immutable, so the only check that
	// can change is expiry, which is made on every use.
	verified *memo.Map[string, *AccessClaims]
}

// NewTokens returns a token service. The algorithm allow-list is exactly the
// algorithms of the configured keys.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if cfg.Signing.sign == nil {
		return nil, errors.New("tokens: the signing key cannot sign")
	}
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.TTL <= 0 {
		return nil, errors.New("tokens: issuer, audience and TTL are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg, keys: map[string]Key{}}
	t.verified = memo.New[string, *AccessClaims](10_000)
	var methods []string
	for _, k := range append([]Key{cfg.Signing}, cfg.Verify...) {
		if _, dup := t.keys[k.ID]; dup {
			continue
		}
		t.keys[k.ID] = k
		methods = append(methods, k.method.Alg())
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
	return t, nil
}

// TTL returns the lifetime of access tokens.
func (t *Tokens) TTL() time.Duration { return t.cfg.TTL }

// Keys returns every key tokens are verified with, the signing key first.
func (t *Tokens) Keys() []Key {
	keys := []Key{t.cfg.Signing.VerifyOnly()}
	for _, k := range t.cfg.Verify {
		if k.ID != t.cfg.Signing.ID {
			keys = append(keys, k.VerifyOnly())
		}
	}
	return keys
}

// Issue signs a new access token for a user's session, with a fresh jti.
// amr is how the session signed in (default: the password alone).
func (t *Tokens) Issue(userID pulid.ID, sessionID string, amr ...string) (token string, claims AccessClaims, err error) {
	if len(amr) == 0 {
		amr = []string{AMRPassword}
	}
	now := t.cfg.Now().Truncate(time.Second)
	claims = AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   string(userID),
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.TTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomID(),
		},
		SessionID: sessionID,
		AMR:       amr,
	}
	tok := jwt.NewWithClaims(t.cfg.Signing.method, claims)
	tok.Header["kid"] = t.cfg.Signing.ID
	tok.Header["typ"] = AccessTokenType
	token, err = tok.SignedString(t.cfg.Signing.sign)
	if err != nil {
		return "", AccessClaims{}, fmt.Errorf("sign access token: %w", err)
	}
	return token, claims, nil
}

// Verify checks an access token per RFC 8725: the algorithm must be on the
// allow-list and match the key named by kid (no key confusion, no "none"),
// the type must be at+jwt, headers that point at other keys (jku, x5u, jwk,
// x5c) or declare critical extensions make it invalid, and exp, iat, iss and
// aud are required and checked with the configured leeway.
//
// It returns ErrTokenExpired for an expired token and ErrInvalidToken for
// anything else wrong. It does not check revocation; see Sessions.
func (t *Tokens) Verify(token string) (*AccessClaims, error) {
	if c, ok := t.verified.Get(token); ok {
		if !t.cfg.Now().Before(c.ExpiresAt.Add(t.cfg.Leeway)) {
			return nil, ErrTokenExpired
		}
		return c, nil
	}
	if len(token) > maxTokenLen || !compactJWS(token) {
		return nil, ErrInvalidToken
	}
	claims := &AccessClaims{}
	_, err := t.parser.ParseWithClaims(token, claims, t.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, ErrInvalidToken
	}
	// WithIssuedAt checks iat only when present; we require it.
	if claims.IssuedAt == nil || !pulid.ID(claims.Subject).Valid() || claims.SessionID == "" || claims.ID == "" {
		return nil, ErrInvalidToken
	}
	t.verified.Add(token, claims)
	return claims, nil
}

// compactJWS reports whether s uses only the characters of the JWS compact
// serialisation (base64url and dots, RFC 7515 §7.1). Go's base64 decoders
// skip CR and LF, so without this check a token had many spellings that all
// verified.
func compactJWS(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// untrustedHeaders name keys or extensions a token could use to choose how
// it is verified. We only ever use our own keys, so their presence alone
// marks a forged or foreign token (RFC 8725 §3.10, RFC 7515 §4.1.11).
var untrustedHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit"}

func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	for _, h := range untrustedHeaders {
		if _, ok := tok.Header[h]; ok {
			return nil, fmt.Errorf("header %q is not accepted", h)
		}
	}
	if typ, _ := tok.Header["typ"].(string); typ != AccessTokenType {
		return nil, errors.New("not an access token")
	}
	kid, _ := tok.Header["kid"].(string)
	k, ok := t.keys[kid]
	if !ok {
		return nil, errors.New("unknown key")
	}
	if tok.Method.Alg() != k.method.Alg() {
		return nil, errors.New("algorithm does not match key")
	}
	return k.verify, nil
}

// randomID returns 128 random bits, base64url-encoded (22 characters).
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Now returns the current time of the token clock.
func (t *Tokens) Now() time.Time { return t.cfg.Now() }
