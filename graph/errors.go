package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb"
)

// The values of extensions.code. Clients switch on them; never rename one.
const (
	CodeUnauthenticated    = "UNAUTHENTICATED"
	CodeForbidden          = "FORBIDDEN"
	CodeBadUserInput       = "BAD_USER_INPUT"
	CodeNotFound           = "NOT_FOUND"
	CodeRateLimited        = "RATE_LIMITED"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
	CodeInternal           = "INTERNAL_SERVER_ERROR"
	// CodeBadRequest is a request that is not GraphQL over HTTP at all (not
	// JSON, wrong content type); CodePayloadTooLarge a body over the limit.
	CodeBadRequest      = "BAD_REQUEST"
	CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"
	// CodeLimitExceeded is a limit of a connection (subscriptions per
	// socket), not of time: end something before starting more.
	CodeLimitExceeded = "LIMIT_EXCEEDED"
)

// inputError is a client mistake in an argument, naming the field.
type inputError struct {
	field string
	msg   string
}

func (e *inputError) Error() string { return e.field + " " + e.msg }

// badInput returns a BAD_USER_INPUT error for field; msg completes the
// sentence "<field> ...".
func badInput(field, msg string) error { return &inputError{field: field, msg: msg} }

// errNotFound is returned when the object a mutation names does not exist.
var errNotFound = errors.New("not found")

// authCodes maps the auth package's sentinels to codes. extensions.reason
// lets a client tell "refresh and retry" (TOKEN_EXPIRED) from "sign in
// again" (SESSION_ENDED) without parsing messages.
var authCodes = []struct {
	err    error
	code   string
	reason string
}{
	{auth.ErrUnauthenticated, CodeUnauthenticated, "NO_TOKEN"},
	{auth.ErrTokenExpired, CodeUnauthenticated, "TOKEN_EXPIRED"},
	{auth.ErrInvalidToken, CodeUnauthenticated, "INVALID_TOKEN"},
	{auth.ErrSessionRevoked, CodeUnauthenticated, "SESSION_ENDED"},
	{auth.ErrInvalidCredentials, CodeUnauthenticated, "INVALID_CREDENTIALS"},
	{auth.ErrInvalidRefreshToken, CodeUnauthenticated, "INVALID_REFRESH_TOKEN"},
	{auth.ErrRefreshReused, CodeUnauthenticated, "REFRESH_TOKEN_REUSED"},
	{auth.ErrForbidden, CodeForbidden, ""},
	{auth.ErrUnavailable, CodeServiceUnavailable, ""},
}

// errorPresenter is the single place internal errors become GraphQL errors.
// Known errors keep a safe message and get a code; anything else is logged
// once, with the request id and path, and reaches the client only as
// "internal error": no SQL, Redis or stack detail ever leaves the server.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if _, coded := gqlErr.Extensions["code"]; coded {
			return gqlErr // parse and validation errors, already coded by gqlgen
		}
		cause := gqlErr.Err
		if cause == nil {
			if gqlErr.Path == nil {
				// A request gqlgen could not read (a body that is not JSON, an
				// unsupported transport). Its message may echo the whole body.
				gqlErr.Message, _, _ = strings.Cut(gqlErr.Message, " body:")
				setCode(gqlErr, CodeBadRequest)
				return gqlErr
			}
			// gqlgen's own execution errors (e.g. a null in a non-null field):
			// safe messages, but a server fault.
			setCode(gqlErr, CodeInternal)
			return gqlErr
		}
		var (
			in *inputError
			ve *ent.ValidationError
			rl *auth.RateLimitError
		)
		switch {
		case errors.As(cause, &in):
			gqlErr.Message = in.Error()
			setCode(gqlErr, CodeBadUserInput)
			gqlErr.Extensions["field"] = in.field
			return gqlErr
		case errors.As(cause, &ve):
			gqlErr.Message = ve.Name + " " + errors.Unwrap(ve).Error()
			setCode(gqlErr, CodeBadUserInput)
			gqlErr.Extensions["field"] = ve.Name
			return gqlErr
		case errors.Is(cause, errTooManySubscriptions):
			gqlErr.Message = cause.Error()
			setCode(gqlErr, CodeLimitExceeded)
			return gqlErr
		case errors.Is(cause, cache.ErrBadCursor):
			gqlErr.Message = "cursor is not one of this list's"
			setCode(gqlErr, CodeBadUserInput)
			return gqlErr
		case errors.Is(cause, cache.ErrUnavailable), entdb.IsUnavailable(cause):
			log.ErrorContext(ctx, "dependency unavailable", slog.Any("error", cause), slog.String("path", gqlErr.Path.String()))
			gqlErr.Message = "service temporarily unavailable; retry shortly"
			setCode(gqlErr, CodeServiceUnavailable)
			unavailableStatus(ctx)
			return gqlErr
		case errors.Is(cause, auth.ErrBusy):
			// Overload, not a fault: counted by the responses metric, not
			// logged once per refused request.
			gqlErr.Message = auth.ErrBusy.Error()
			setCode(gqlErr, CodeServiceUnavailable)
			unavailableStatus(ctx)
			return gqlErr
		case errors.Is(cause, errNotFound), ent.IsNotFound(cause):
			gqlErr.Message = "not found"
			setCode(gqlErr, CodeNotFound)
			return gqlErr
		case errors.As(cause, &rl):
			gqlErr.Message = rl.Error()
			setCode(gqlErr, CodeRateLimited)
			gqlErr.Extensions["retryAfter"] = rl.RetrySeconds()
			if st := responseStatusFrom(ctx); st != nil {
				st.retryAt(rl.RetrySeconds())
			}
			return gqlErr
		case isArgumentError(ctx, gqlErr):
			setCode(gqlErr, CodeBadUserInput)
			return gqlErr
		}
		for _, m := range authCodes {
			if errors.Is(cause, m.err) {
				if m.code == CodeServiceUnavailable {
					log.ErrorContext(ctx, "dependency unavailable", slog.Any("error", cause), slog.String("path", gqlErr.Path.String()))
					unavailableStatus(ctx)
				}
				gqlErr.Message = m.err.Error()
				setCode(gqlErr, m.code)
				if m.reason != "" {
					gqlErr.Extensions["reason"] = m.reason
				}
				return gqlErr
			}
		}
		attrs := []any{slog.Any("error", cause), slog.String("path", gqlErr.Path.String())}
		if pe, ok := errors.AsType[*panicError](cause); ok {
			attrs = append(attrs, slog.String("stack", string(pe.stack)))
		}
		log.ErrorContext(ctx, "internal error", attrs...)
		return &gqlerror.Error{
			Message:    "internal error",
			Path:       gqlErr.Path,
			Locations:  gqlErr.Locations,
			Extensions: map[string]any{"code": CodeInternal},
		}
	}
}

// unavailableStatus makes the response an HTTP 503 with Retry-After: 1
// (unless it is already refused for another reason, such as a rate limit).
func unavailableStatus(ctx context.Context) {
	if st := responseStatusFrom(ctx); st != nil {
		st.refuse(http.StatusServiceUnavailable, 1)
	}
}

// isArgumentError reports whether err arose while coercing the arguments of
// the current field (an ID, cursor, enum or time that does not parse):
// gqlgen reports those on the path of the argument, below the field.
func isArgumentError(ctx context.Context, err *gqlerror.Error) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return false
	}
	return len(err.Path) > len(fc.Path())
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// panicError is a recovered resolver panic, with the stack where it began.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// recoverPanic turns a resolver panic into an internal error; the presenter
// logs it with its stack. The request goes on; the client sees "internal
// error".
func recoverPanic(_ context.Context, p any) error {
	return &panicError{value: p, stack: debug.Stack()}
}
