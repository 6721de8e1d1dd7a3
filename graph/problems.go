package graph

import (
	"context"
	"errors"
	"net/http"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/graph/store"
)

// problem is what a client is told of one kind of error.
type problem struct {
	// match reports whether err is of this kind (errors.Is for a sentinel,
	// errors.As for a type), and returns the error it matched.
	match func(err error) (matched error, ok bool)
	// code is the extensions.code.
	code string
	// status is the HTTP status of a request refused as a whole with this
	// problem; 0 if it never refuses one (a field's error leaves the
	// response at 200).
	status int
	// refuses: an error of this kind anywhere, a field's included, refuses
	// the whole request with status (a dependency that is down fails
	// every field alike: the client should retry the request).
	refuses bool
	// retryAfter raises the response's Retry-After to this many seconds.
	// An error with a RetrySeconds method says its own, and sends it as
	// extensions.retryAfter too.
	retryAfter int
	// reason is the extensions.reason: it lets a client tell "refresh and
	// retry" (TOKEN_EXPIRED) from "sign in again" (SESSION_ENDED) without
	// parsing messages.
	reason string
	// log, if set, is the message the error is logged under, at error
	// level with the request id and path: a fault of ours or of a
	// dependency, not the client's.
	log string
	// message is what the client reads; empty for the matched error's own
	// text (our sentinels' texts are written for clients).
	message string
}

// problems is the one table from errors to what clients see: code, HTTP
// status, reason, message, and whether the error is logged. The error
// presenter codes an error by the first row it matches; RefusalStatus
// gives a code's status. An error of no row is a fault of ours: logged, and
// answered INTERNAL_SERVER_ERROR, "internal error". Bad input (a field's
// value refused, naming the field) is coded apart, see clientInput.
var problems = [...]problem{
	{match: is(errTooManySubscriptions), code: CodeLimitExceeded},
	// An event stream over its user's cap is refused with 429 (a socket is
	// closed with 4429).
	{match: is(errTooManyConnections), code: CodeLimitExceeded, status: http.StatusTooManyRequests},
	// The resolvers check cursors first and name the argument; this is
	// the store's own check behind them.
	{match: is(store.ErrBadCursor), code: CodeBadUserInput, message: "cursor is not one of this list's"},
	{match: is(rdb.ErrUnavailable), code: CodeServiceUnavailable, status: http.StatusServiceUnavailable, refuses: true, retryAfter: 1,
		log: "dependency unavailable", message: "service temporarily unavailable; retry shortly"},
	{match: when(entdb.IsUnavailable), code: CodeServiceUnavailable, status: http.StatusServiceUnavailable, refuses: true, retryAfter: 1,
		log: "dependency unavailable", message: "service temporarily unavailable; retry shortly"},
	// Overload, not a fault: counted by the responses metric, not logged
	// once per refused request.
	{match: is(auth.ErrBusy), code: CodeServiceUnavailable, status: http.StatusServiceUnavailable, refuses: true, retryAfter: 1},
	{match: is(errNotFound), code: CodeNotFound, message: "not found"},
	{match: when(ent.IsNotFound), code: CodeNotFound, message: "not found"},
	// In a field (a login over its budget) it leaves the response at 200;
	// charged before anything ran, it refuses the request (operationGuard).
	{match: as[*auth.RateLimitError], code: CodeRateLimited, status: http.StatusTooManyRequests},
	{match: is(auth.ErrUnauthenticated), code: CodeUnauthenticated, reason: "NO_TOKEN"},
	{match: is(auth.ErrTokenExpired), code: CodeUnauthenticated, reason: "TOKEN_EXPIRED"},
	{match: is(auth.ErrInvalidToken), code: CodeUnauthenticated, reason: "INVALID_TOKEN"},
	{match: is(auth.ErrSessionRevoked), code: CodeUnauthenticated, reason: "SESSION_ENDED"},
	{match: is(auth.ErrInvalidCredentials), code: CodeUnauthenticated, reason: "INVALID_CREDENTIALS"},
	{match: is(auth.ErrInvalidRefreshToken), code: CodeUnauthenticated, reason: "INVALID_REFRESH_TOKEN"},
	{match: is(auth.ErrRefreshReused), code: CodeUnauthenticated, reason: "REFRESH_TOKEN_REUSED"},
	{match: is(auth.ErrForbidden), code: CodeForbidden},
	{match: as[*auth.MFARequiredError], code: CodeMFARequired},
	{match: is(auth.ErrMFARequired), code: CodeMFARequired},
	{match: is(auth.ErrInvalidChallenge), code: CodeUnauthenticated, reason: "INVALID_MFA_CHALLENGE"},
	{match: is(auth.ErrInvalidMFACode), code: CodeUnauthenticated, reason: "INVALID_MFA_CODE"},
	{match: is(auth.ErrMFAEnabled), code: CodeForbidden},
	{match: is(auth.ErrMFANotEnrolled), code: CodeForbidden},
	{match: is(errMFAUnavailable), code: CodeForbidden},
	{match: is(auth.ErrEmailNotVerified), code: CodeEmailNotVerified},

	// Requests refused before any GraphQL runs, or instead of it, with a
	// message of their own (see Refusal): their codes' statuses.
	{code: CodeBadRequest, status: http.StatusBadRequest},
	{code: CodeDocumentNotFound, status: http.StatusBadRequest},
	{code: CodeDocumentNotTrusted, status: http.StatusForbidden},
	{code: CodeForbidden, status: http.StatusForbidden}, // a WebSocket from an Origin not allowed
	{code: CodeHTTPSRequired, status: http.StatusForbidden},
	{code: CodeNotFound, status: http.StatusNotFound}, // a path nothing is served at
	{code: CodeMethodNotAllowed, status: http.StatusMethodNotAllowed},
	{code: CodePayloadTooLarge, status: http.StatusRequestEntityTooLarge},
	{code: CodeRateLimited, status: http.StatusTooManyRequests}, // too many sockets waiting for connection_init
	{code: CodeInternal, status: http.StatusInternalServerError},
	{code: CodeServiceUnavailable, status: http.StatusServiceUnavailable}, // still starting
}

// problemOf returns the first row of problems that err matches, and the
// error it matched; nil if none does.
func problemOf(err error) (*problem, error) {
	for i := range problems {
		if p := &problems[i]; p.match != nil {
			if matched, ok := p.match(err); ok {
				return p, matched
			}
		}
	}
	return nil, nil
}

// retry is the Retry-After, in seconds, of an error of p's kind; own
// reports whether the error said it itself.
func (p *problem) retry(matched error) (seconds int, own bool) {
	if r, ok := errors.AsType[retryable](matched); ok {
		return r.RetrySeconds(), true
	}
	return p.retryAfter, false
}

// refuseWith refuses the whole request with err's status, if its kind has
// one: for an error met before anything ran, which fails every field.
func refuseWith(ctx context.Context, err error) {
	p, matched := problemOf(err)
	if st := responseStatusFrom(ctx); st != nil && p != nil && p.status != 0 {
		retry, _ := p.retry(matched)
		st.refuse(p.status, retry)
	}
}

// RefusalStatus returns the HTTP status of a request refused as a whole
// with code (400 for a code that refuses no whole request).
func RefusalStatus(code string) int {
	for _, p := range problems {
		if p.code == code && p.status != 0 {
			return p.status
		}
	}
	return http.StatusBadRequest
}

// retryable is an error that says when to try again (auth.RateLimitError).
type retryable interface {
	error
	RetrySeconds() int
}

// is matches target and any error that wraps it.
func is(target error) func(error) (error, bool) {
	return func(err error) (error, bool) { return target, errors.Is(err, target) }
}

// as matches an error of type T anywhere in err's chain.
func as[T error](err error) (error, bool) {
	t, ok := errors.AsType[T](err)
	return t, ok
}

// when matches the errors another package's predicate recognises (which
// uses errors.As itself: ent.IsNotFound, entdb.IsUnavailable).
func when(pred func(error) bool) func(error) (error, bool) {
	return func(err error) (error, bool) { return err, pred(err) }
}
