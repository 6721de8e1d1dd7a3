package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
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
	// ErrBusy means no hashing slot freed up in time: the server is
	// overloaded with password checks. Nothing was checked or written.
	ErrBusy = errors.New("too many password checks at once; retry shortly")
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

// DefaultArgon2 returns the production cost.
func DefaultArgon2() Argon2Params { return Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
	// A stored hash naming a larger cost is refused rather than computed:
	// a corrupted row must not make one login allocate terabytes.
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	maxArgon2Time   = 64
)

// DefaultHashWait is how long a hash waits for a slot by default.
const DefaultHashWait = 2 * time.Second

// PasswordOptions bound how many hashes run at once. Each argon2id hash
// holds Argon2Params.Memory (19 MiB by default) while it runs, so without a
// bound a burst of logins is a burst of memory: 200 at once took the
// process to about 5 GB.
type PasswordOptions struct {
	// Concurrency is how many hashes may run at once; 0: GOMAXPROCS (more
	// would only queue for the CPU while holding their memory).
	Concurrency int
	// Wait is the longest a hash waits for a slot (less if the request's
	// deadline comes first); 0: DefaultHashWait.
	Wait time.Duration
	// OnAcquire, if set, is called each time a slot is taken, with the
	// number of slots held (this one included). Tests use it to hold slots
	// and to see the bound.
	OnAcquire func(held int)
}

// Passwords hashes and verifies passwords with argon2id, encoded in the PHC
// string format so parameters can be raised later without breaking old
// hashes. At most PasswordOptions.Concurrency hashes run at once; the rest
// wait their turn in order, for a bounded time.
type Passwords struct {
	params Argon2Params
	// dummy is a hash of a random password with the current parameters. Login
	// verifies against it when the e-mail is unknown, so an unknown e-mail
	// costs the same time as a wrong password (no account enumeration by
	// timing).
	dummy     string
	slots     *semaphore.Weighted
	wait      time.Duration
	held      atomic.Int64
	onAcquire func(int)
}

// NewPasswords returns a hasher with the given cost and concurrency.
func NewPasswords(p Argon2Params, o PasswordOptions) *Passwords {
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.Wait <= 0 {
		o.Wait = DefaultHashWait
	}
	ps := &Passwords{params: p, slots: semaphore.NewWeighted(int64(o.Concurrency)), wait: o.Wait, onAcquire: o.OnAcquire}
	ps.dummy = ps.hash(rand.Text())
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

// Hash returns the PHC-encoded argon2id hash of pw with a fresh salt. It
// waits for a hashing slot; returns ErrBusy if none frees up in time.
func (ps *Passwords) Hash(ctx context.Context, pw string) (string, error) {
	release, err := ps.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return ps.hash(pw), nil
}

// Gate guards a password check with a budget (see LoginAttempt). Both
// methods run while the check holds its hashing slot, so only as many
// checks as there are slots can be between a look and its charge: that
// bounds how far parallel checks overshoot the budget.
type Gate interface {
	// Check runs before hashing; an error stops the check and is returned
	// as is.
	Check(ctx context.Context) error
	// Failed runs after a wrong password; an error is returned as is.
	Failed(ctx context.Context) error
}

// Verify reports whether pw matches the encoded hash, in constant time. A
// malformed hash never matches. It waits for a hashing slot; returns
// ErrBusy if none frees up in time. gate, if not nil, is asked before
// hashing and told of a wrong password, in the slot.
func (ps *Passwords) Verify(ctx context.Context, encoded, pw string, gate Gate) (bool, error) {
	release, err := ps.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	if gate != nil {
		if err := gate.Check(ctx); err != nil {
			return false, err
		}
	}
	ok := ps.verify(encoded, pw)
	if !ok && gate != nil {
		if err := gate.Failed(ctx); err != nil {
			return false, err
		}
	}
	return ok, nil
}

// VerifyNone spends the time of one Verify without any account: call it when
// the e-mail is unknown. Its errors are Verify's; the gate is told of a
// failure.
func (ps *Passwords) VerifyNone(ctx context.Context, pw string, gate Gate) error {
	_, err := ps.Verify(ctx, ps.dummy, pw, gate)
	return err
}

// acquire takes a hashing slot, waiting at most ps.wait (or until the
// context's deadline, if sooner). Waiters are served in arrival order.
func (ps *Passwords) acquire(ctx context.Context) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, ps.wait)
	defer cancel()
	if err := ps.slots.Acquire(wctx, 1); err != nil {
		return nil, ErrBusy
	}
	held := ps.held.Add(1)
	if ps.onAcquire != nil {
		ps.onAcquire(int(held))
	}
	return func() {
		ps.held.Add(-1)
		ps.slots.Release(1)
	}, nil
}

func (ps *Passwords) hash(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails on supported platforms
	p := ps.params
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func (ps *Passwords) verify(encoded, pw string) bool {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
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
