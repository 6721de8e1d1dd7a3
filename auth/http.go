package auth

import (
	"context"
	"net/http"
	"strings"
)

// Authenticator turns an access token into a viewer; *Sessions is one.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Viewer, error)
}

type metaKey struct{}

// WithMeta returns a context carrying the client's description.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the client's description recorded by Middleware.
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// Middleware identifies the caller of each request: it verifies the bearer
// token, if any, and puts the Viewer in the context. It never rejects a
// request itself (register and login need no token, and a stale header must
// not break them); the @auth directive decides, and reports why a presented
// token was refused. clientIP says which address the request came from;
// path is where the API is mounted (the Path of the legacy refresh cookie).
func Middleware(authn Authenticator, clientIP func(*http.Request) string, path string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := WithMeta(r.Context(), Meta{UserAgent: r.UserAgent(), IP: clientIP(r)})
			ctx = withWeb(ctx, w, r, path)
			if token, present := BearerToken(r.Header.Get("Authorization")); present {
				ctx = Identify(ctx, authn, token)
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Identify authenticates token and returns a context carrying either the
// viewer or the reason the token was refused.
func Identify(ctx context.Context, authn Authenticator, token string) context.Context {
	v, err := authn.Authenticate(ctx, token)
	if err != nil {
		return withFailure(ctx, err)
	}
	return NewContext(ctx, v)
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header (the scheme is case-insensitive, RFC 7235). present is true when
// any Authorization header was sent; an unusable one yields an empty token,
// which fails verification like any invalid token.
func BearerToken(header string) (token string, present bool) {
	if header == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(token), true
}
