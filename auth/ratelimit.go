package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/ent/schema/pulid"
)

// ErrRateLimited is matched by errors.Is on a *RateLimitError.
var ErrRateLimited = errors.New("too many requests")

// RateLimitError says that a limit was hit and when to try again.
type RateLimitError struct {
	// Scope names the limit: "login", "register" or "api".
	Scope      string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many %s requests; retry after %d s", e.Scope, e.RetrySeconds())
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// RetrySeconds is RetryAfter rounded up to whole seconds (at least 1), as
// the Retry-After header and extensions.retryAfter carry it.
func (e *RateLimitError) RetrySeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// Rate is a limit of N events (or cost units) per Period, with bursts up to
// N. The zero Rate means no limit.
type Rate struct {
	N      int
	Period time.Duration
}

// ParseRate reads "N/period" (e.g. "10/15m") or "off".
func ParseRate(s string) (Rate, error) {
	if s == "off" || s == "0" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("rate must look like 10/15m or be off, not %q", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate must look like 10/15m or be off, not %q", s)
	}
	return Rate{N: count, Period: d}, nil
}

func (r Rate) limit() redis_rate.Limit {
	return redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Period}
}

// RateLimits are the limits enforced in Redis, shared by every instance.
type RateLimits struct {
	// LoginAccount throttles login attempts per account (e-mail); it is what
	// stops password guessing against one account from many addresses.
	LoginAccount Rate
	// LoginIP throttles login attempts per client address.
	LoginIP Rate
	// RegisterIP throttles sign-ups per client address.
	RegisterIP Rate
	// API is the budget of query complexity per user (or, unauthenticated,
	// per client address) per period.
	API Rate
	// IPv6Prefix is the prefix length per-address limits key IPv6 clients
	// by (one subscriber usually holds a whole /64); IPv4 clients are keyed
	// by their address. 0: 64.
	IPv6Prefix int
}

// DefaultRateLimits are the production defaults.
var DefaultRateLimits = RateLimits{
	LoginAccount: Rate{10, 15 * time.Minute},
	LoginIP:      Rate{50, 15 * time.Minute},
	RegisterIP:   Rate{10, time.Hour},
	API:          Rate{6000, time.Minute},
	IPv6Prefix:   64,
}

// Limiter enforces RateLimits with GCRA (github.com/go-redis/redis_rate):
// one atomic script per check, on one key, so it is cluster-safe.
type Limiter struct {
	rl     *redis_rate.Limiter
	keys   keys
	limits RateLimits
	log    *slog.Logger
	obs    Observer
}

// NewLimiter returns a limiter over rdb; prefix is the Redis key prefix.
// Refusals are logged to log and counted by obs (either may be nil).
func NewLimiter(rdb redis.UniversalClient, prefix string, limits RateLimits, log *slog.Logger, obs Observer) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = NopObserver{}
	}
	if limits.IPv6Prefix <= 0 || limits.IPv6Prefix > 128 {
		limits.IPv6Prefix = 64
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb), keys: keys{prefix}, limits: limits, log: log, obs: obs}
}

// Login charges one login attempt (successful or not) to the account and
// to the client address. Every attempt counts, aliased ones included, and
// charging first (not after a failure) means parallel guesses cannot slip
// past the limit. Returns a *RateLimitError or ErrUnavailable.
func (l *Limiter) Login(ctx context.Context, email, ip string) error {
	if err := l.take(ctx, "login", l.keys.loginAccount(hashKey(email)), l.limits.LoginAccount, 1); err != nil {
		return err
	}
	return l.take(ctx, "login", l.keys.loginIP(l.addr(ip)), l.limits.LoginIP, 1)
}

// Register charges one sign-up to the client address.
func (l *Limiter) Register(ctx context.Context, ip string) error {
	return l.take(ctx, "register", l.keys.registerIP(l.addr(ip)), l.limits.RegisterIP, 1)
}

// API charges an operation's complexity to the user's budget, or to the
// client address's when there is no user.
func (l *Limiter) API(ctx context.Context, user pulid.ID, ip string, cost int) error {
	if l.limits.API.N == 0 {
		return nil // off: not even a key to build
	}
	key := l.keys.rateLimit(user)
	if user == "" {
		key = l.keys.rateLimitIP(l.addr(ip))
	}
	return l.take(ctx, "api", key, l.limits.API, max(cost, 1))
}

func (l *Limiter) take(ctx context.Context, scope, key string, r Rate, n int) error {
	if r.N == 0 {
		return nil
	}
	res, err := l.rl.AllowN(ctx, key, r.limit(), n)
	if err != nil {
		return unavailable("rate limit", err)
	}
	if res.Allowed < n {
		l.log.WarnContext(ctx, "rate limited", slog.String("event", "rate_limited"), slog.String("scope", scope),
			slog.Duration("retry_after", res.RetryAfter))
		l.obs.RateLimited(scope)
		return &RateLimitError{Scope: scope, RetryAfter: res.RetryAfter}
	}
	return nil
}

// addr is the part of a client address per-address limits key on: an IPv4
// address whole, an IPv6 address cut to its /IPv6Prefix (a subscriber is
// handed a whole /64 and picks addresses in it at will).
func (l *Limiter) addr(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip // not an address (a test's pipe); keyed as is
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, l.limits.IPv6Prefix).Masked().String()
}

// hashKey keeps e-mail addresses out of Redis key names.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(s)))
	return hex.EncodeToString(sum[:12])
}
