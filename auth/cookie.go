package auth

import (
	"context"
	"net/http"
	"time"
)

// Web clients can keep the refresh token out of JavaScript: a request with
// the header "X-Auth-Client: web" gets the refresh token of login, register,
// refresh and changePassword as an HttpOnly cookie (and an empty
// refreshToken in the payload), and refresh reads it back from the cookie.
//
// CSRF: the cookie is only ever read when that custom header is present. A
// cross-site form or image cannot send custom headers, and a cross-site
// fetch that does needs a CORS preflight, which only APP_CORS_ORIGINS pass.
// GraphQL over POST also requires Content-Type: application/json (another
// preflight trigger), and mutations are refused over GET. SameSite=Strict
// keeps the browser from sending the cookie cross-site in the first place.
const (
	// WebClientHeader is the header that asks for cookie mode.
	WebClientHeader = "X-Auth-Client"
	// RefreshCookie is the cookie's name. The __Secure- prefix makes
	// browsers refuse it unless it is Secure (localhost counts as secure).
	RefreshCookie = "__Secure-authql-rt"
)

// WebClient is the cookie side of a web client's request.
type WebClient struct {
	w      http.ResponseWriter
	path   string
	cookie string
}

type webKey struct{}

// WebFrom returns the request's web client, if it asked for cookie mode.
func WebFrom(ctx context.Context) (*WebClient, bool) {
	wc, ok := ctx.Value(webKey{}).(*WebClient)
	return wc, ok
}

func withWeb(ctx context.Context, w http.ResponseWriter, r *http.Request, path string) context.Context {
	if r.Header.Get(WebClientHeader) != "web" {
		return ctx
	}
	wc := &WebClient{w: w, path: path}
	if c, err := r.Cookie(RefreshCookie); err == nil {
		wc.cookie = c.Value
	}
	return context.WithValue(ctx, webKey{}, wc)
}

// RefreshToken is the refresh token the browser sent, or "".
func (wc *WebClient) RefreshToken() string { return wc.cookie }

// SetRefreshToken stores the refresh token in the cookie until it expires.
func (wc *WebClient) SetRefreshToken(token string, ttl time.Duration) {
	http.SetCookie(wc.w, &http.Cookie{
		Name: RefreshCookie, Value: token, Path: wc.path, MaxAge: int(ttl.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// ClearRefreshToken deletes the cookie (logout).
func (wc *WebClient) ClearRefreshToken() {
	http.SetCookie(wc.w, &http.Cookie{
		Name: RefreshCookie, Value: "", Path: wc.path, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}
