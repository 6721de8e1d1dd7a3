package auth

import (
	"context"
	"slices"
	"time"

	"github.com/authql/authql/ent/schema/pulid"
)

// Viewer is the authenticated caller of a request: who they are and which
// session and access token they came with.
type Viewer struct {
	UserID    pulid.ID
	SessionID string
	TokenID   string
	// IssuedAt and ExpiresAt bound the access token's life.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AMR is the access token's amr claim: how its session signed in.
	AMR []string
}

// MFA reports whether the viewer's session signed in with a second factor.
func (v Viewer) MFA() bool { return slices.Contains(v.AMR, AMROTP) }

type viewerKey struct{}

type authErrKey struct{}

// NewContext returns a context carrying the viewer.
func NewContext(parent context.Context, v Viewer) context.Context {
	return context.WithValue(parent, viewerKey{}, v)
}

// FromContext returns the viewer of the request, if it was authenticated.
// There is no fallback: an unauthenticated context yields ok == false.
func FromContext(ctx context.Context) (v Viewer, ok bool) {
	v, ok = ctx.Value(viewerKey{}).(Viewer)
	return v, ok
}

// withFailure records why a presented token was not accepted, so that @auth
// can tell the client (expired vs invalid vs revoked) without every public
// operation failing because of a stale header.
func withFailure(parent context.Context, err error) context.Context {
	return context.WithValue(parent, authErrKey{}, err)
}

// Require returns the viewer, or the reason there is none: the error that
// rejected the presented token, or ErrUnauthenticated if none was presented.
func Require(ctx context.Context) (Viewer, error) {
	if v, ok := FromContext(ctx); ok {
		return v, nil
	}
	if err, ok := ctx.Value(authErrKey{}).(error); ok {
		return Viewer{}, err
	}
	return Viewer{}, ErrUnauthenticated
}

// RequireMFA returns the viewer if their session signed in with a second
// factor; ErrMFARequired if it signed in with the password alone, or the
// reason there is no viewer.
func RequireMFA(ctx context.Context) (Viewer, error) {
	v, err := Require(ctx)
	if err != nil {
		return v, err
	}
	if !v.MFA() {
		return Viewer{}, ErrMFARequired
	}
	return v, nil
}
