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

	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent/schema/pulid"
)

// ErrRateLimited is matched by errors.Is on a *RateLimitError.
var ErrRateLimited = errors.New("too many requests")

// RateScope names a rate limit in errors, logs and metrics.
type RateScope string

// The rate limits' scopes.
const (
	RateLogin    RateScope = "login"    // password checks (Limiter.Login)
	RateRegister RateScope = "register" // sign-ups (Limiter.Register)
	RateRefresh  RateScope = "refresh"  // refresh-token rotations (Limiter.Refresh)
	RateAPI      RateScope = "api"      // query complexity (Limiter.API)
	RateMail     RateScope = "mail"     // mails asked for: resets, verification re-sends (Limiter.Mail)
)

// RateLimitError says that a limit was hit and when to try again.
type RateLimitError struct {
	// Scope names the limit.
	Scope      RateScope
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
	// LoginAccount throttles failed password checks against one account
	// (e-mail) from anywhere not known to it; it is what stops password
	// guessing against one account from many addresses.
	LoginAccount Rate
	// LoginKnown throttles failed password checks against one account from
	// each device, address or session known to it: their own budget, which
	// failures elsewhere do not spend (see Limiter.Login).
	LoginKnown Rate
	// LoginIP throttles login attempts per client address.
	LoginIP Rate
	// RegisterIP throttles sign-ups per client address.
	RegisterIP Rate
	// RefreshSession throttles refreshes of one session; RefreshIP refresh
	// attempts per client address.
	RefreshSession Rate
	RefreshIP      Rate
	// MailIP throttles requests that send mail (a password reset, a
	// verification re-send) per client address; MailAccount per e-mail
	// address asked about, whether it has an account or not (so the
	// refusal reveals nothing), and reset attempts per account.
	MailIP      Rate
	MailAccount Rate
	// API is the budget of query complexity per user (or, unauthenticated,
	// per client address) per period.
	API Rate
	// KnownTTL is how long a device or address a login succeeded from
	// stays known to the account; 0: DefaultKnownTTL.
	KnownTTL time.Duration
	// IPv6Prefix is the prefix length per-address limits key IPv6 clients
	// by (one subscriber usually holds a whole /64); IPv4 clients are keyed
	// by their address. 0: 64.
	IPv6Prefix int
}

// DefaultKnownTTL is how long a device or address stays known by default.
const DefaultKnownTTL = 30 * 24 * time.Hour

// DefaultRateLimits returns the production defaults. A client refreshes once
// per access token (15 minutes) and a few tabs may race within the reuse
// grace window: 30 refreshes an hour per session never stops one.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		LoginAccount:   Rate{10, 15 * time.Minute},
		LoginKnown:     Rate{10, 15 * time.Minute},
		LoginIP:        Rate{50, 15 * time.Minute},
		RegisterIP:     Rate{10, time.Hour},
		RefreshSession: Rate{30, time.Hour},
		RefreshIP:      Rate{600, time.Hour},
		API:            Rate{6000, time.Minute},
		MailIP:         Rate{20, time.Hour},
		MailAccount:    Rate{5, time.Hour},
		KnownTTL:       DefaultKnownTTL,
		IPv6Prefix:     64,
	}
}

// Limiter enforces RateLimits with GCRA (github.com/go-redis/redis_rate,
// and gcraScript for the buckets charged after a check): one atomic script
// per check, on one key, so it is cluster-safe.
type Limiter struct {
	now    func() time.Time
	rdb    redis.UniversalClient
	rl     *redis_rate.Limiter
	keys   keys
	limits RateLimits
	log    *slog.Logger
	obs    Observer
	// leases hold the slices of API budgets this instance has taken.
	leases leases
}

// NewLimiter returns a limiter over rdb; prefix is the Redis key prefix.
// now is the clock of the budgets charged after a check (nil: time.Now).
// Refusals are logged to log and counted by obs (either may be nil).
func NewLimiter(rdb redis.UniversalClient, prefix string, limits RateLimits, now func() time.Time, log *slog.Logger, obs Observer) *Limiter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = NopObserver{}
	}
	if limits.KnownTTL <= 0 {
		limits.KnownTTL = DefaultKnownTTL
	}
	if limits.IPv6Prefix <= 0 || limits.IPv6Prefix > 128 {
		limits.IPv6Prefix = 64
	}
	return &Limiter{now: now, rdb: rdb, rl: redis_rate.NewLimiter(rdb), keys: keys{prefix}, limits: limits, log: log, obs: obs}
}

// Register charges one sign-up to the client address.
func (l *Limiter) Register(ctx context.Context, ip string) error {
	return l.take(ctx, RateRegister, l.keys.registerIP(l.addr(ip)), l.limits.RegisterIP, 1)
}

// Mail charges a request that sends mail about email (a reset, a
// verification re-send) to the client address and to the address asked
// about. Returns a *RateLimitError or rdb.ErrUnavailable.
func (l *Limiter) Mail(ctx context.Context, email, ip string) error {
	if err := l.take(ctx, RateMail, l.keys.mailIP(l.addr(ip)), l.limits.MailIP, 1); err != nil {
		return err
	}
	return l.take(ctx, RateMail, l.keys.mailAccount(hashKey(email)), l.limits.MailAccount, 1)
}

// ResetAttempt charges an attempt to spend a password-reset token to the
// client address (the budget of Mail's per-address limit).
func (l *Limiter) ResetAttempt(ctx context.Context, ip string) error {
	return l.take(ctx, RateMail, l.keys.mailIP(l.addr(ip)), l.limits.MailIP, 1)
}

// API charges an operation's complexity to the user's budget, or to the
// client address's when there is no user. The budget is leased from Redis
// in slices and spent locally (see LeaseShare): most operations cost no
// Redis round trip.
func (l *Limiter) API(ctx context.Context, user pulid.ID, ip string, cost int) error {
	if l.limits.API.N == 0 {
		return nil // off: not even a key to build
	}
	key := l.keys.rateLimit(user)
	if user == "" {
		key = l.keys.rateLimitIP(l.addr(ip))
	}
	return l.takeLeased(ctx, RateAPI, key, l.limits.API, max(cost, 1))
}

// Refresh is called before a refresh token is rotated: it charges the
// attempt to the client address (every attempt, garbage included) and
// looks whether the session the token names has room. The session itself
// is charged by Refreshed, once the rotation succeeded: a token forged
// with someone's session id spends none of that session's budget. Returns
// a *RateLimitError or rdb.ErrUnavailable.
func (l *Limiter) Refresh(ctx context.Context, token, ip string) error {
	if err := l.take(ctx, RateRefresh, l.keys.refreshIP(l.addr(ip)), l.limits.RefreshIP, 1); err != nil {
		return err
	}
	rt, err := parseRefreshToken(token)
	if err != nil || l.limits.RefreshSession.N == 0 {
		return nil // the rotation refuses it, for free
	}
	return l.peek(ctx, RateRefresh, l.keys.refreshSession(rt.userID, rt.sessionID), l.limits.RefreshSession)
}

// Refreshed charges a successful rotation of token to its session. The
// client has its new pair already: a failure is logged, not returned.
func (l *Limiter) Refreshed(ctx context.Context, token string) {
	rt, err := parseRefreshToken(token)
	if err != nil || l.limits.RefreshSession.N == 0 {
		return
	}
	if err := l.charge(ctx, l.keys.refreshSession(rt.userID, rt.sessionID), l.limits.RefreshSession); err != nil {
		l.log.WarnContext(ctx, "charge refresh", slog.Any("error", err))
	}
}

// take charges n to a bucket, refusing if it has no room for them.
func (l *Limiter) take(ctx context.Context, scope RateScope, key string, r Rate, n int) error {
	if r.N == 0 {
		return nil
	}
	res, err := l.rl.AllowN(ctx, key, r.limit(), n)
	if err != nil {
		return rdb.Unavailable("rate limit", err)
	}
	if res.Allowed < n {
		return l.refuse(ctx, scope, res.RetryAfter)
	}
	return nil
}

// peek refuses if a bucket has no room for one more event, without
// charging it.
func (l *Limiter) peek(ctx context.Context, scope RateScope, key string, r Rate) error {
	if r.N == 0 {
		return nil
	}
	wait, err := l.gcra(ctx, key, r, gcraPeek)
	if err != nil {
		return err
	}
	if wait > 0 {
		return l.refuse(ctx, scope, wait)
	}
	return nil
}

// charge adds one event to a bucket even past its limit: what overshoots
// (checks that raced past a peek) is owed, and repaid before the bucket
// has room again, so the long-run rate holds.
func (l *Limiter) charge(ctx context.Context, key string, r Rate) error {
	if r.N == 0 {
		return nil
	}
	_, err := l.gcra(ctx, key, r, gcraCharge)
	return err
}

func (l *Limiter) refuse(ctx context.Context, scope RateScope, retry time.Duration) error {
	l.log.WarnContext(ctx, "rate limited", slog.String("event", "rate_limited"), slog.String("scope", string(scope)),
		slog.Duration("retry_after", retry))
	l.obs.RateLimited(scope)
	return &RateLimitError{Scope: scope, RetryAfter: retry}
}

// gcraScript is the GCRA of github.com/go-redis/redis_rate, on the same
// key format (the theoretical arrival time in seconds since 2017-01-01),
// split so a bucket can be looked at before the work it guards and charged
// after it. The time is the server's clock, like the session and refresh
// timelines these budgets follow (redis_rate's buckets read Redis's): the
// instances' clocks must agree within seconds, as they must for token
// expiry. ARGV: the rate (also the burst), the period in seconds, now, and
// "peek" (look only) or "charge" (add one event, even past the limit).
// Returns the seconds until one more event fits, 0 if it fits now (within
// a millisecond: the time is stored to the microsecond, and the sums of
// floats drift below that).
var gcraScript = redis.NewScript(`
local emission = tonumber(ARGV[2]) / tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call("GET", KEYS[1]) or now), now)
if ARGV[4] == "charge" then
  tat = tat + emission
  redis.call("SET", KEYS[1], string.format("%.6f", tat), "EX", math.ceil(tat - now))
end
local wait = tat + emission - emission * tonumber(ARGV[1]) - now
if wait < 0.001 then
  return "0"
end
return string.format("%.6f", wait)
`)

// gcraOp is what gcraScript does to a bucket (its ARGV[4]).
type gcraOp string

const (
	gcraPeek   gcraOp = "peek"   // look only
	gcraCharge gcraOp = "charge" // add one event, even past the limit
)

// gcraEpoch is redis_rate's epoch (2017-01-01 UTC): seconds since it fit a
// float64 to the microsecond.
const gcraEpoch = 1483228800

func (l *Limiter) gcra(ctx context.Context, key string, r Rate, op gcraOp) (time.Duration, error) {
	now := float64(l.now().UnixMicro()-gcraEpoch*1e6) / 1e6
	out, err := gcraScript.Run(ctx, l.rdb, []string{key}, r.N, r.Period.Seconds(),
		strconv.FormatFloat(now, 'f', 6, 64), string(op)).Text()
	if err != nil {
		return 0, rdb.Unavailable("rate limit", err)
	}
	sec, err := strconv.ParseFloat(out, 64)
	if err != nil {
		return 0, rdb.Unavailable("rate limit", err)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// addr is the part of a client address per-address limits key on.
func (l *Limiter) addr(ip string) string { return AddrKey(ip, l.limits.IPv6Prefix) }

// AddrKey is the part of a client address that per-address limits count
// one client by: an IPv4 address whole, an IPv6 address cut to its
// /ipv6Prefix (a subscriber is handed a whole /64 and picks addresses in
// it at will; a prefix out of 1 to 128 counts as 64). What is not an
// address (a test's pipe) is its own key.
func AddrKey(ip string, ipv6Prefix int) string {
	if ipv6Prefix <= 0 || ipv6Prefix > 128 {
		ipv6Prefix = 64
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, ipv6Prefix).Masked().String()
}

// hashKey keeps e-mail addresses out of Redis key names.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(s)))
	return hex.EncodeToString(sum[:12])
}
