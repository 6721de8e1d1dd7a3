package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// Lifetimes of the tokens mailed to an account's owner.
const (
	// VerifyEmailTTL: a verification link works this long.
	VerifyEmailTTL = 24 * time.Hour
	// ResetPasswordTTL: a password-reset link works this long.
	ResetPasswordTTL = 30 * time.Minute
)

// NewAccountToken returns a new single-use token for a mailed link (32
// random bytes, base64url) and the hash to store in its place.
func NewAccountToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashAccountToken(token)
}

// HashAccountToken is what the database keeps of a token: its SHA-256, in
// hex. 256 random bits need no slow hash; the hash only makes a copy of
// the database useless for following links.
func HashAccountToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
