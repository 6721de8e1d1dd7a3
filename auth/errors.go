package auth

import (
	"errors"
	"time"
)

// Sentinel errors of this package. Callers match them with errors.Is; the
// graph package maps them to GraphQL error codes in one table. Their messages
// are safe to show to clients.
var (
	// ErrUnauthenticated means the request carried no access token.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrInvalidToken means the access token is malformed, tampered with,
	// signed with an unknown key or algorithm, or of the wrong type.
	ErrInvalidToken = errors.New("invalid access token")
	// ErrTokenExpired means the access token was valid but has expired; the
	// client should refresh.
	ErrTokenExpired = errors.New("access token expired")
	// ErrSessionRevoked means the token's session has ended (logout,
	// revocation, theft detection) or the token itself was revoked.
	ErrSessionRevoked = errors.New("session has ended")
	// ErrInvalidCredentials means a login failed. It deliberately does not say
	// whether the e-mail or the password was wrong.
	ErrInvalidCredentials = errors.New("invalid e-mail or password")
	// ErrInvalidRefreshToken means a refresh token is malformed, unknown,
	// expired, or belongs to a session that has ended.
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrRefreshReused means an already rotated refresh token was presented
	// after the grace window: the session has been revoked as stolen.
	ErrRefreshReused = errors.New("refresh token reuse detected; the session has been revoked")
	// ErrForbidden means the caller is authenticated but not allowed to do
	// what was asked.
	ErrForbidden = errors.New("not allowed")
	// ErrMFARequired means the field needs a session signed in with a
	// second factor (@auth(requires: MFA)), and the access token's session
	// was signed in with the password alone.
	ErrMFARequired = errors.New("this needs a sign-in with two-factor authentication: sign in again and complete verifyMfa")
	// ErrInvalidChallenge means an MFA challenge is unknown, expired or
	// already used: sign in again.
	ErrInvalidChallenge = errors.New("invalid or expired MFA challenge; sign in again")
	// ErrInvalidMFACode means a two-factor code was wrong, already used or
	// out of its time window.
	ErrInvalidMFACode = errors.New("invalid two-factor code")
	// ErrMFAEnabled means two-factor sign-in is already on (enrollTotp).
	ErrMFAEnabled = errors.New("two-factor sign-in is already on; turn it off first")
	// ErrMFANotEnrolled means there is no TOTP enrollment to confirm, or
	// two-factor sign-in is off (nothing to turn off or regenerate).
	ErrMFANotEnrolled = errors.New("two-factor sign-in is not set up: call enrollTotp first")
	// ErrEmailNotVerified means the account's address must be verified
	// before it signs in (APP_REQUIRE_VERIFIED_EMAIL): a sign-up whose link
	// was mailed, or a login of an account that has not followed it yet.
	ErrEmailNotVerified = errors.New("the e-mail address is not verified yet: follow the link mailed to it (resendVerification sends a new one)")
)

// MFARequiredError is login's answer for an account with two-factor
// sign-in on: the password was right, and Challenge, passed to verifyMfa
// with a code within ExpiresIn, completes the sign-in.
type MFARequiredError struct {
	Challenge string
	ExpiresIn time.Duration
}

func (e *MFARequiredError) Error() string {
	return "two-factor code required: complete the sign-in with verifyMfa"
}

// A session store that cannot be reached is rdb.ErrUnavailable: the
// request could not be checked, and nothing was accepted unchecked.
