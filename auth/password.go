package auth

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits, in characters (NIST SP 800-63B §3.1.1.2). There are
// no composition rules. argon2id hashes the whole input, so nothing is
// silently truncated (unlike bcrypt's 72 bytes).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Errors of CheckPassword. Their messages complete "password ...".
var (
	ErrPasswordLength = fmt.Errorf("password must be %d to %d characters", MinPasswordLen, MaxPasswordLen)
	ErrPasswordCommon = errors.New("password is one of the most common passwords; choose another")
)

//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords is the set of refused passwords, lower-cased, built on
// first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10_000)
	for _, line := range strings.Split(commonPasswordsFile, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

// Argon2Params are the argon2id cost parameters. DefaultArgon2 follows the
// OWASP Password Storage Cheat Sheet (m=19 MiB, t=2, p=1).
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is the production cost.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// A stored hash naming a larger cost is refused rather than computed:
	// a corrupted row must not make one login allocate terabytes.
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	maxArgon2Time   = 64
)

// Passwords hashes and verifies passwords with argon2id, encoded in the PHC
// string format so parameters can be raised later without breaking old
// hashes.
type Passwords struct {
	params Argon2Params
	// dummy is a hash of a random password with the current parameters. Login
	// verifies against it when the e-mail is unknown, so an unknown e-mail
	// costs the same time as a wrong password (no account enumeration by
	// timing).
	dummy string
}

// NewPasswords returns a hasher with the given cost.
func NewPasswords(p Argon2Params) *Passwords {
	ps := &Passwords{params: p}
	ps.dummy = ps.Hash(rand.Text())
	return ps
}

// NormalizeEmail trims and lower-cases an address. Addresses are compared
// and stored in this form, so "Ann@Example.com " and "ann@example.com" are
// one account.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckPassword reports whether a new password meets the policy of NIST SP
// 800-63B: 8 to 128 characters, no composition rules, and not one of the
// 10,000 most common passwords (compared case-insensitively).
func CheckPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLen || n > MaxPasswordLen {
		return ErrPasswordLength
	}
	if _, common := commonPasswords()[strings.ToLower(pw)]; common {
		return ErrPasswordCommon
	}
	return nil
}

// Hash returns the PHC-encoded argon2id hash of pw with a fresh salt.
func (ps *Passwords) Hash(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	p := ps.params
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether pw matches the encoded hash, in constant time. A
// malformed hash never matches.
func (ps *Passwords) Verify(encoded, pw string) bool {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// VerifyNone spends the time of one Verify without any account: call it when
// the e-mail is unknown.
func (ps *Passwords) VerifyNone(pw string) {
	ps.Verify(ps.dummy, pw)
}

var errBadHash = errors.New("malformed password hash")

func decodeHash(encoded string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	// Sscanf ignores what follows the last verb, so the parameters must also
	// print back to the same text. argon2 panics on a zero time or thread
	// count: refuse them here.
	_, err = fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads)
	if err != nil || parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads) || p.Time < 1 || p.Threads < 1 ||
		p.Memory > maxArgon2Memory || p.Time > maxArgon2Time {
		return p, nil, nil, errBadHash
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}
