package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authql/authql/ent/schema/pulid"
)

// Refresh tokens are opaque strings, never JWTs:
//
//	rt.<user id>.<session id>.<secret>
//
// The secret is 256 random bits. The user id lets the server find the
// session's Redis slot (keys are hash-tagged by user); the session id names
// the session. Redis stores only the SHA-256 of the whole token, so a dump of
// Redis yields no usable refresh token.
const refreshPrefix = "rt."

const secretLen = 32

// refreshToken is a parsed refresh token.
type refreshToken struct {
	raw       string
	userID    pulid.ID
	sessionID string
}

func newRefreshToken(userID pulid.ID, sessionID string) refreshToken {
	secret := make([]byte, secretLen)
	_, _ = rand.Read(secret)
	raw := refreshPrefix + string(userID) + "." + sessionID + "." + base64.RawURLEncoding.EncodeToString(secret)
	return refreshToken{raw: raw, userID: userID, sessionID: sessionID}
}

// parseRefreshToken checks the shape of a presented refresh token. It never
// touches Redis, so garbage is rejected for free.
func parseRefreshToken(raw string) (refreshToken, error) {
	rest, ok := strings.CutPrefix(raw, refreshPrefix)
	if !ok || len(raw) > 256 {
		return refreshToken{}, ErrInvalidRefreshToken
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return refreshToken{}, ErrInvalidRefreshToken
	}
	uid, sid, secret := pulid.ID(parts[0]), parts[1], parts[2]
	if !uid.Valid() || !validSessionID(sid) {
		return refreshToken{}, ErrInvalidRefreshToken
	}
	// The length check comes first: the decoder skips CR and LF, which would
	// give one token several spellings.
	if len(secret) != base64.RawURLEncoding.EncodedLen(secretLen) {
		return refreshToken{}, ErrInvalidRefreshToken
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil || len(b) != secretLen {
		return refreshToken{}, ErrInvalidRefreshToken
	}
	return refreshToken{raw: raw, userID: uid, sessionID: sid}, nil
}

// hash is the token's identity in Redis.
func (t refreshToken) hash() string {
	sum := sha256.Sum256([]byte(t.raw))
	return hex.EncodeToString(sum[:])
}

// newSessionID returns a new session id: a PULID, so GraphQL clients see
// sessions with IDs of the same shape as every other object.
func newSessionID(now time.Time) string { return string(pulid.New(pulid.SessionPrefix, now)) }

// validSessionID reports whether s has the shape of a session id.
func validSessionID(s string) bool {
	id := pulid.ID(s)
	return id.Valid() && id.Prefix() == pulid.SessionPrefix
}

// issued is the token pair minted by a rotation. Redis keeps it encrypted
// under a key derived from the parent refresh token, so that a concurrent
// refresh with the same parent (another tab, within the grace window) gets
// this same pair back, while Redis itself never holds a usable token.
type issued struct {
	AccessToken  string `json:"a"`
	RefreshToken string `json:"r"`
	ExpiresAt    int64  `json:"e"` // access token expiry, Unix seconds
}

func childKey(parent refreshToken) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(parent.raw), nil, "authql refresh child v1", 32)
}

func sealIssued(parent refreshToken, p issued) (string, error) {
	gcm, err := childAEAD(parent)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, nil)), nil
}

func openIssued(parent refreshToken, sealed string) (issued, error) {
	var p issued
	gcm, err := childAEAD(parent)
	if err != nil {
		return p, err
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < gcm.NonceSize() {
		return p, errors.New("open issued pair: malformed")
	}
	plain, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], nil)
	if err != nil {
		return p, fmt.Errorf("open issued pair: %w", err)
	}
	return p, json.Unmarshal(plain, &p)
}

func childAEAD(parent refreshToken) (cipher.AEAD, error) {
	key, err := childKey(parent)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
