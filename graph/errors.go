package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/post"
	"github.com/authql/authql/ent/schema"
	"github.com/authql/authql/ent/user"
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
	// CodeMethodNotAllowed is an HTTP method the path does not serve (a
	// mutation over GET among them); the Allow header lists those it does.
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// CodeHTTPSRequired is a write over plain HTTP where HTTPS is required.
	CodeHTTPSRequired = "HTTPS_REQUIRED"
	// CodeLimitExceeded is a limit of a connection (subscriptions per
	// socket), not of time: end something before starting more.
	CodeLimitExceeded = "LIMIT_EXCEEDED"
	// CodeMFARequired is a sign-in or field that needs a second factor:
	// login's answer for an account with two-factor sign-in on (carrying
	// extensions.mfaChallenge for verifyMfa), and @auth(requires: MFA)'s
	// refusal of a session signed in with the password alone.
	CodeMFARequired = "MFA_REQUIRED"
	// CodeEmailNotVerified: the account's address must be verified before
	// it gets tokens (APP_REQUIRE_VERIFIED_EMAIL).
	CodeEmailNotVerified = "EMAIL_NOT_VERIFIED"
	// CodeClientClosed is a field that stopped because the client went
	// away: nobody reads it; it keeps aborts out of the internal errors.
	CodeClientClosed = "CLIENT_CLOSED_REQUEST"
)

// Codes returns every extensions.code the server sends: ours, and those
// gqlgen sets itself. The error table of docs/API.md lists each one.
func Codes() []string {
	return []string{
		CodeUnauthenticated, CodeForbidden, CodeBadUserInput, CodeNotFound, CodeRateLimited,
		CodeServiceUnavailable, CodeInternal, CodeBadRequest, CodePayloadTooLarge,
		CodeMethodNotAllowed, CodeHTTPSRequired, CodeLimitExceeded, CodeEmailNotVerified, CodeClientClosed, CodeMFARequired,
		errPersistedQueryNotFoundCode, CodeDocumentNotFound, CodeDocumentNotTrusted,
		errcode.ValidationFailed, errcode.ParseFailed,
		"COMPLEXITY_LIMIT_EXCEEDED", // extension.ComplexityLimit's, not exported
	}
}

// Reasons returns every extensions.reason of an UNAUTHENTICATED error.
func Reasons() []string {
	var out []string
	for _, p := range problems {
		if p.reason != "" {
			out = append(out, p.reason)
		}
	}
	return out
}

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
				// A body gqlgen could not read as a GraphQL request (it
				// answers 400 itself). Its message names Go types and
				// echoes the whole body.
				gqlErr.Message = "the body is not a GraphQL request: a JSON object with \"query\" (a string) and optional \"operationName\", \"variables\" and \"extensions\""
				setCode(gqlErr, CodeBadRequest)
				return gqlErr
			}
			// gqlgen's own execution errors (e.g. a null in a non-null field):
			// safe messages, but a server fault.
			setCode(gqlErr, CodeInternal)
			return gqlErr
		}
		// A client that went away cancels the request's context, and every
		// field still running fails with it: no fault of ours, and nobody
		// to answer. The HTTP layer counts the abort once per request.
		if errors.Is(ctx.Err(), context.Canceled) {
			log.DebugContext(ctx, "client went away", slog.Any("error", cause), slog.String("path", gqlErr.Path.String()))
			return &gqlerror.Error{
				Message:    "the client closed the request",
				Path:       gqlErr.Path,
				Locations:  gqlErr.Locations,
				Extensions: map[string]any{"code": CodeClientClosed},
			}
		}
		// First, before any classification by cause: an argument that does
		// not decode is the client's mistake, whatever the decoder said (a
		// truncated cursor fails with io.ErrUnexpectedEOF, which would
		// otherwise read as a dropped database connection).
		if arg, ok := argumentName(ctx, gqlErr); ok {
			log.DebugContext(ctx, "argument refused", slog.String("argument", arg), slog.Any("error", cause))
			return inputErrorAt(gqlErr, &inputError{field: arg, msg: argumentProblem(ctx, gqlErr, arg)})
		}
		if in, ok := clientInput(ctx, log, cause); ok {
			return inputErrorAt(gqlErr, in)
		}
		if presentKnown(ctx, log, gqlErr, cause) {
			return gqlErr
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

// presentKnown codes cause as the first row of problems it matches says,
// and reports whether it matched one.
func presentKnown(ctx context.Context, log *slog.Logger, gqlErr *gqlerror.Error, cause error) bool {
	p, matched := problemOf(cause)
	if p == nil {
		return false
	}
	if p.log != "" {
		log.ErrorContext(ctx, p.log, slog.Any("error", cause), slog.String("path", gqlErr.Path.String()))
	}
	gqlErr.Message = p.message
	if gqlErr.Message == "" {
		gqlErr.Message = matched.Error()
	}
	setCode(gqlErr, p.code)
	if p.reason != "" {
		gqlErr.Extensions["reason"] = p.reason
	}
	if m, ok := matched.(*auth.MFARequiredError); ok {
		gqlErr.Extensions["mfaChallenge"] = m.Challenge
		gqlErr.Extensions["expiresIn"] = int(m.ExpiresIn.Seconds())
	}
	retry, own := p.retry(matched)
	if own {
		gqlErr.Extensions["retryAfter"] = retry
	}
	if st := responseStatusFrom(ctx); st != nil {
		if p.refuses {
			st.refuse(p.status, retry)
		} else if retry > 0 {
			st.retryAt(retry)
		}
	}
	return true
}

// clientInput returns the client's mistake that cause is, if it is one:
// our own input checks, and ent's validators on the fields a client sets,
// whose messages (`ent: validator failed for field "Post.title": ...`) are
// reworded here. ent's other validation errors (a missing author, a bad
// generated ID) are our bugs, not the client's.
func clientInput(ctx context.Context, log *slog.Logger, cause error) (*inputError, bool) {
	var (
		in *inputError
		ve *ent.ValidationError
	)
	switch {
	case errors.As(cause, &in):
		return in, true
	case errors.As(cause, &ve):
		field, ok := entInputFields[ve.Name]
		if !ok {
			return nil, false
		}
		log.DebugContext(ctx, "input refused", slog.String("field", field), slog.Any("error", cause))
		var le *schema.LengthError
		switch {
		case errors.As(ve, &le):
			return &inputError{field: field, msg: fmt.Sprintf("must be %d to %d characters", le.Min, le.Max)}, true
		case errors.Is(ve, schema.ErrNotUTF8):
			return &inputError{field: field, msg: "must be valid UTF-8"}, true
		}
		return &inputError{field: field, msg: "is not valid"}, true
	}
	return nil, false
}

// entInputFields maps the ent fields a client sets to the GraphQL input
// field that carries each.
var entInputFields = map[string]string{
	post.FieldTitle:   "title",
	post.FieldContent: "content",
	user.FieldName:    "name",
	user.FieldEmail:   "email",
}

// inputErrorAt makes gqlErr a BAD_USER_INPUT error for in.
func inputErrorAt(gqlErr *gqlerror.Error, in *inputError) *gqlerror.Error {
	gqlErr.Message = in.Error()
	setCode(gqlErr, CodeBadUserInput)
	gqlErr.Extensions["field"] = in.field
	return gqlErr
}

// argumentName returns the argument of the current field that err is
// about, if err arose while decoding the field's arguments (an ID, cursor
// or time that does not parse): gqlgen reports those on the path of the
// argument, below the field. For a field of an input object it is the
// innermost field's name.
func argumentName(ctx context.Context, err *gqlerror.Error) (string, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || len(err.Path) <= len(fc.Path()) {
		return "", false
	}
	for i := len(err.Path) - 1; i >= len(fc.Path()); i-- {
		if name, ok := err.Path[i].(ast.PathName); ok {
			return string(name), true
		}
	}
	return "", false
}

// argumentProblems complete "<argument> ..." for a value of each scalar
// that does not decode. The decoders' own messages name msgpack codes and
// Go types; these say what to send instead.
var argumentProblems = map[string]string{
	"Cursor": "is not a cursor of this server: pass a startCursor or endCursor of this list unchanged",
	"ID":     "is not a valid ID",
	"Time":   "must be an RFC 3339 date-time, such as 2026-11-26T15:04:05Z",
}

// argumentProblem words the error of an argument that did not decode, by
// the argument's type.
func argumentProblem(ctx context.Context, err *gqlerror.Error, arg string) string {
	fc := graphql.GetFieldContext(ctx)
	if fc.Field.Definition != nil && len(err.Path) == len(fc.Path())+1 {
		if def := fc.Field.Definition.Arguments.ForName(arg); def != nil {
			if msg, ok := argumentProblems[def.Type.Name()]; ok {
				return msg
			}
		}
	}
	return "is not a valid value"
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
