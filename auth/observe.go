package auth

import (
	"errors"

	"github.com/authql/authql/cache/rdb"
)

// Observer is told about the events operators count: tokens issued and
// verified, refresh-token theft, rate-limit refusals. The server implements
// it with Prometheus; this package does not know about metrics. Methods are
// called on request paths, from many goroutines, and must not block.
type Observer interface {
	// TokenIssued is called for every access token handed out (login,
	// sign-up, refresh, password change); not for a pair returned again
	// within the refresh reuse grace window.
	TokenIssued()
	// TokenVerified is called once per authenticated request with one of
	// the Verify* results.
	TokenVerified(result string)
	// ReuseDetected is called when a rotated refresh token is presented
	// after the grace window and its session is revoked.
	ReuseDetected()
	// RateLimited is called when a request is refused by a limit.
	RateLimited(scope RateScope)
}

// The results TokenVerified reports.
const (
	VerifyOK          = "ok"
	VerifyExpired     = "expired"
	VerifyInvalid     = "invalid"
	VerifyRevoked     = "revoked"
	VerifyUnavailable = "unavailable" // Redis had to be asked and could not be
)

// VerifyResults lists every result TokenVerified reports.
func VerifyResults() []string {
	return []string{VerifyOK, VerifyExpired, VerifyInvalid, VerifyRevoked, VerifyUnavailable}
}

// RateLimitScopes lists every scope RateLimited reports.
func RateLimitScopes() []RateScope {
	return []RateScope{RateLogin, RateRegister, RateRefresh, RateAPI, RateMail}
}

// NopObserver ignores every event; it is the default.
type NopObserver struct{}

var _ Observer = NopObserver{}

// TokenIssued implements Observer.
func (NopObserver) TokenIssued() {}

// TokenVerified implements Observer.
func (NopObserver) TokenVerified(string) {}

// ReuseDetected implements Observer.
func (NopObserver) ReuseDetected() {}

// RateLimited implements Observer.
func (NopObserver) RateLimited(RateScope) {}

// verifyResult names the outcome of Authenticate for TokenVerified.
func verifyResult(err error) string {
	switch {
	case err == nil:
		return VerifyOK
	case errors.Is(err, ErrTokenExpired):
		return VerifyExpired
	case errors.Is(err, ErrSessionRevoked):
		return VerifyRevoked
	case errors.Is(err, rdb.ErrUnavailable):
		return VerifyUnavailable
	default:
		return VerifyInvalid
	}
}
