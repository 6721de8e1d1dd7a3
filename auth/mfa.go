package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// ChallengeTTL is how long an MFA challenge from login stays valid.
const ChallengeTTL = 5 * time.Minute

// Authentication methods an access token's amr claim lists (RFC 8176).
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
)

// Challenges are the pending second steps of two-factor sign-ins: login
// with the right password makes one, verifyMfa consumes it. Each is a
// random 256-bit token, kept in Redis only as its hash, valid for
// ChallengeTTL and used at most once (deleted atomically when it
// succeeds).
type Challenges struct {
	rdb  redis.UniversalClient
	keys keys
	now  func() time.Time
}

// NewChallenges returns the challenge store in rdb under prefix; now is
// the clock challenges expire by (nil: time.Now).
func NewChallenges(rdb redis.UniversalClient, prefix string, now func() time.Time) *Challenges {
	if now == nil {
		now = time.Now
	}
	return &Challenges{rdb: rdb, keys: keys{prefix}, now: now}
}

// New makes a challenge for the user whose password was just checked. The
// value is the user ID and the expiry (checked on the sessions' clock);
// Redis's TTL only removes it.
func (c *Challenges) New(ctx context.Context, uid pulid.ID) (string, error) {
	token := "mfa_" + rand.Text() + rand.Text()
	val := string(uid) + " " + strconv.FormatInt(c.now().Add(ChallengeTTL).UnixMilli(), 10)
	if err := c.rdb.Set(ctx, c.keys.challenge(challengeHash(token)), val, ChallengeTTL).Err(); err != nil {
		return "", rdb.Unavailable("store mfa challenge", err)
	}
	return token, nil
}

// User returns the user a live challenge was made for, without using it
// up (a mistyped code may be tried again). Returns ErrInvalidChallenge.
func (c *Challenges) User(ctx context.Context, token string) (pulid.ID, error) {
	if len(token) > 128 {
		return "", ErrInvalidChallenge
	}
	val, err := c.rdb.Get(ctx, c.keys.challenge(challengeHash(token))).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrInvalidChallenge
	}
	if err != nil {
		return "", rdb.Unavailable("read mfa challenge", err)
	}
	uid, exp, _ := strings.Cut(val, " ")
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !c.now().Before(time.UnixMilli(ms)) {
		return "", ErrInvalidChallenge
	}
	return pulid.ID(uid), nil
}

// Use consumes a challenge; of two requests completing it at once only
// one gets nil, the other ErrInvalidChallenge.
func (c *Challenges) Use(ctx context.Context, token string) error {
	n, err := c.rdb.Del(ctx, c.keys.challenge(challengeHash(token))).Result()
	if err != nil {
		return rdb.Unavailable("use mfa challenge", err)
	}
	if n == 0 {
		return ErrInvalidChallenge
	}
	return nil
}

func challengeHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// MFA looks, before a two-factor code is checked for a user, whether the
// account's budget of wrong codes has room: the login-per-account rate
// (LoginAccount), on a bucket of its own, scope RateLogin. Only wrong codes
// spend it (MFAFailed), so the owner with the right code is never locked
// out by the budget they did not spend, and 6 digits cannot be walked
// through: 10 wrong codes per 15 minutes by default.
func (l *Limiter) MFA(ctx context.Context, uid pulid.ID) error {
	return l.peek(ctx, RateLogin, l.keys.mfa(uid), l.limits.LoginAccount)
}

// MFAFailed charges a wrong two-factor code to the account.
func (l *Limiter) MFAFailed(ctx context.Context, uid pulid.ID) error {
	return l.charge(ctx, l.keys.mfa(uid), l.limits.LoginAccount)
}
