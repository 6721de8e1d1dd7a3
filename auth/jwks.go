package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
)

// JWK is one public key in JSON Web Key form (RFC 7517, RFC 8037 for OKP).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the public keys other services verify our access tokens
// with: every Ed25519 key, signing first. HMAC secrets are never published
// (a service that can verify HS256 can also sign).
func (t *Tokens) JWKS() []JWK {
	out := []JWK{}
	for _, k := range t.Keys() {
		pub := k.Public()
		if pub == nil {
			continue
		}
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
			Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	return out
}

// ParseEd25519Private reads an Ed25519 private key given as base64 (standard
// or URL alphabet, padded or not) of its 32-byte seed or 64-byte private key.
func ParseEd25519Private(s string) (ed25519.PrivateKey, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errors.New("ed25519 key must be base64")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, errors.New("ed25519 key must be a 32-byte seed or a 64-byte private key")
}

// ParseEd25519Public reads a base64 32-byte Ed25519 public key.
func ParseEd25519Public(s string) (ed25519.PublicKey, error) {
	b, err := decodeBase64(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("ed25519 public key must be 32 bytes, base64")
	}
	return ed25519.PublicKey(b), nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
