package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authql/authql/ent/schema/pulid"
)

// Two-factor sign-in (TOTP, RFC 6238) with github.com/pquerna/otp: 6
// digits, SHA-1, 30-second steps, the parameters every authenticator app
// reads from an otpauth:// URI. A code is accepted for the step before,
// the current one and the one after (clock drift, RFC 6238 §5.2), and only
// for a step later than the last one accepted for the user: no code is
// accepted twice.
const (
	totpPeriod = 30
	totpSkew   = 1
	// RecoveryCodeCount is how many recovery codes confirmTotp hands out.
	RecoveryCodeCount = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Enrollment is a new TOTP secret, in the forms an authenticator app takes.
type Enrollment struct {
	// Secret is the base32 secret, for typing in by hand.
	Secret string
	// URI is the otpauth:// URI (Key Uri Format) the QR code encodes.
	URI string
	// QRCode is the URI as a PNG QR code, in a data: URL.
	QRCode string
}

// NewEnrollment makes a new random TOTP secret (160 bits, RFC 4226's
// recommendation) for account at issuer.
func NewEnrollment(issuer, account string) (Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account,
		Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate totp secret: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return Enrollment{}, fmt.Errorf("draw qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, fmt.Errorf("encode qr code: %w", err)
	}
	return Enrollment{Secret: key.Secret(), URI: key.URL(),
		QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// TOTPStep is the time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// MatchTOTP returns the time step code is valid for at now (within the
// skew), if it is later than after (the last step accepted); ok is false
// for a wrong, stale or replayed code. Every candidate is compared, in
// constant time, whatever matched first.
func MatchTOTP(secret, code string, now time.Time, after int64) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != int(otp.DigitsSix) {
		return 0, false
	}
	cur := TOTPStep(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && s > after && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// LooksLikeTOTP reports whether code has the shape of a TOTP code (six
// digits) rather than of a recovery code.
func LooksLikeTOTP(code string) bool {
	code = strings.TrimSpace(code)
	if len(code) != int(otp.DigitsSix) {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// recoveryEncoding is RFC 4648 base32, lower-case (HashRecoveryCode
// lower-cases what is typed).
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns RecoveryCodeCount fresh codes, each 50 random
// bits written as "xxxxx-xxxxx".
func NewRecoveryCodes() []string {
	out := make([]string, RecoveryCodeCount)
	for i := range out {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		s := recoveryEncoding.EncodeToString(b)[:10]
		out[i] = s[:5] + "-" + s[5:]
	}
	return out
}

// HashRecoveryCode is how a recovery code is stored: SHA-256 over the user
// ID and the code as typed, normalised (case, spaces and dashes). 50 random
// bits behind a per-account guess limit need no slow hash.
func HashRecoveryCode(uid pulid.ID, code string) string {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(code)))
	sum := sha256.Sum256([]byte("authql recovery\x00" + string(uid) + "\x00" + norm))
	return hex.EncodeToString(sum[:])
}

// ErrSealed means a sealed value could not be opened: another key sealed
// it, or it was altered.
var ErrSealed = errors.New("sealed value cannot be opened")

// Sealer encrypts secrets kept in the database (TOTP secrets) with AES-256-
// GCM, under a key derived from the configured encryption key with HKDF
// (SHA-256). Each value is bound to what it belongs to (the associated
// data, e.g. the user ID), so a sealed value copied to another row does not
// open.
type Sealer struct{ aead cipher.AEAD }

// sealPrefix versions the stored form, so a later scheme can be told apart.
const sealPrefix = "v1:"

// NewSealer returns a sealer keyed by secret (at least 32 bytes).
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("encryption key must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "authql at-rest encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for the owner ad: "v1:" and base64 of a random nonce
// followed by the ciphertext.
func (s *Sealer) Seal(plain, ad string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(ad))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts what Seal returned for the same ad. Returns ErrSealed.
func (s *Sealer) Open(sealed, ad string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", ErrSealed
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", ErrSealed
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(ad))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}
