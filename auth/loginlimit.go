package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/rdb"
)

// Password guessing is limited without handing attackers a way to lock the
// owner out. Every attempt is charged to the client's address first, so a
// throttled address costs nothing more. Then each check is charged to one
// budget of the account, and only if the password was wrong (a right
// password spends nothing): the budget of the device, address or session
// the attempt comes from if the account knows it, else the account's shared
// budget. Failures from elsewhere spend only the shared budget, so the
// owner's known device or address still gets in while the attacker is
// throttled; an attacker's total is the shared budget plus one per known
// device, address or session they hold.
//
// A budget is looked at before the hash and charged after a failure, both
// in the hashing slot (LoginAttempt is the Gate of Passwords.Verify), so
// checks racing past the look are bounded by the hashing slots: with k
// slots on each of n instances, at most n·k−1 checks beyond the budget.
// What they overshoot is owed and paid back before the budget has room
// again, so the long-run rate holds.

// Caller is who attempts a password check, besides the password.
type Caller struct {
	// IP is the client's address.
	IP string
	// Device is the web client's device cookie, if any: a token the
	// account was handed when it signed in from this browser. It selects a
	// budget and nothing else; it is never a credential.
	Device string
	// Session is the caller's own session id, when it is signed in to the
	// account it checks the password of (changePassword); never set it
	// from a token of another account.
	Session string
}

// LoginAttempt is one password check against an account; Limiter.Login
// starts it. A nil *LoginAttempt (no limiter) allows everything.
type LoginAttempt struct {
	l    *Limiter
	acct string // hashKey of the e-mail
	addr string // the client's address prefix
	// lane is the known device (d:<hash of its token>), address (a:<addr>)
	// or session (s:<id>) whose budget the check spends; "": the shared one.
	lane string
	// knownDevice: the presented device token is known to the account.
	knownDevice bool
}

// Login starts a password check against email: it charges the client's
// address and chooses the budget the check will spend (see above).
// Returns a *RateLimitError or rdb.ErrUnavailable.
func (l *Limiter) Login(ctx context.Context, email string, c Caller) (*LoginAttempt, error) {
	a := &LoginAttempt{l: l, acct: hashKey(email), addr: l.addr(c.IP)}
	if err := l.take(ctx, RateLogin, l.keys.loginIP(a.addr), l.limits.LoginIP, 1); err != nil {
		return nil, err
	}
	if c.Session != "" {
		a.lane = "s:" + c.Session
		return a, nil
	}
	lanes := []string{"a:" + a.addr}
	if c.Device != "" && len(c.Device) <= 64 {
		// The device first: an address may be shared with the attacker.
		lanes = []string{"d:" + hashToken(c.Device), lanes[0]}
	}
	keys := make([]string, len(lanes))
	for i, lane := range lanes {
		keys[i] = l.keys.known(a.acct, lane)
	}
	known, err := l.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, rdb.Unavailable("rate limit", err)
	}
	for i, v := range known {
		if v != nil {
			a.lane = lanes[i]
			a.knownDevice = lanes[i][0] == 'd'
			break
		}
	}
	return a, nil
}

var _ Gate = (*LoginAttempt)(nil)

// Check refuses if the attempt's budget has no room. Passwords.Verify calls
// it in the hashing slot, right before hashing.
func (a *LoginAttempt) Check(ctx context.Context) error {
	if a == nil {
		return nil
	}
	return a.l.peek(ctx, RateLogin, a.bucket(), a.rate())
}

// Failed charges a wrong password to the attempt's budget. An error (Redis
// is down) means the failure could not be counted: the attempt is refused
// as unavailable rather than answered.
func (a *LoginAttempt) Failed(ctx context.Context) error {
	if a == nil {
		return nil
	}
	return a.l.charge(ctx, a.bucket(), a.rate())
}

// Succeeded makes the client's address, and the browser of a web client
// (wc, or nil), known to the account: their failures later spend budgets
// of their own. The web client gets a device cookie (the one it presented,
// if the account knew it; a new one otherwise).
func (a *LoginAttempt) Succeeded(ctx context.Context, wc *WebClient) {
	if a == nil {
		return
	}
	a.l.remember(ctx, signIn{acct: a.acct, addr: a.addr, wc: wc, knownDevice: a.knownDevice})
}

// SignedIn is Succeeded for a sign-in without a password check (a new
// account).
func (l *Limiter) SignedIn(ctx context.Context, email, ip string, wc *WebClient) {
	l.remember(ctx, signIn{acct: hashKey(email), addr: l.addr(ip), wc: wc})
}

// signIn is a successful sign-in for remember.
type signIn struct {
	acct string // the account (hashKey of its e-mail)
	addr string // the client's address, as limits key it
	wc   *WebClient
	// knownDevice: wc presented a device token the account handed out,
	// which it keeps; any other web client gets a new one.
	knownDevice bool
}

func (l *Limiter) remember(ctx context.Context, s signIn) {
	ttl := l.limits.KnownTTL
	var token string
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, l.keys.known(s.acct, "a:"+s.addr), 1, ttl)
		if s.wc != nil {
			token = s.wc.DeviceToken()
			if !s.knownDevice {
				token = rand.Text() // never adopt a token the account did not hand out
			}
			p.Set(ctx, l.keys.known(s.acct, "d:"+hashToken(token)), 1, ttl)
		}
		return nil
	})
	if err != nil {
		// The sign-in stands; its next failures are charged to the shared
		// budget.
		l.log.WarnContext(ctx, "remember sign-in", slog.Any("error", err))
		return
	}
	if s.wc != nil {
		s.wc.SetDeviceToken(token, ttl)
	}
}

func (a *LoginAttempt) bucket() string {
	if a.lane == "" {
		return a.l.keys.loginAccount(a.acct)
	}
	return a.l.keys.loginLane(a.acct, a.lane)
}

func (a *LoginAttempt) rate() Rate {
	if a.lane == "" {
		return a.l.limits.LoginAccount
	}
	return a.l.limits.LoginKnown
}

func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
