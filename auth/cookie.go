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
//
// The cookies are __Host- cookies: browsers accept them only if Secure
// (localhost counts as secure), with Path=/ and no Domain, so neither a
// sibling subdomain nor a plain-HTTP page can set or shadow them.
const (
	// WebClientHeader is the header that asks for cookie mode.
	WebClientHeader = "X-Auth-Client"
	// RefreshCookie is the refresh token's cookie.
	RefreshCookie = "__Host-authql-rt"
	// LegacyRefreshCookie is the name the refresh cookie had before (with
	// Path set to the API's path). It is still read, so browsers signed in
	// then stay signed in, and deleted whenever RefreshCookie is set.
	LegacyRefreshCookie = "__Secure-authql-rt"
	// DeviceCookie marks a browser that signed in to an account before: its
	// failed logins spend a budget of their own (see Limiter.Login). It is
	// a random token bound to accounts in Redis, never a credential.
	DeviceCookie = "__Host-authql-dev"
)

// WebClient is the cookie side of a web client's request.
type WebClient struct {
	w          http.ResponseWriter
	legacyPath string // the Path of LegacyRefreshCookie
	legacy     bool   // the request carried LegacyRefreshCookie
	refresh    string
	device     string
}

type webKey struct{}

// WebFrom returns the request's web client, if it asked for cookie mode.
func WebFrom(ctx context.Context) (*WebClient, bool) {
	wc, ok := ctx.Value(webKey{}).(*WebClient)
	return wc, ok
}

func withWeb(ctx context.Context, w http.ResponseWriter, r *http.Request, legacyPath string) context.Context {
	if r.Header.Get(WebClientHeader) != "web" {
		return ctx
	}
	wc := &WebClient{w: w, legacyPath: legacyPath}
	if c, err := r.Cookie(LegacyRefreshCookie); err == nil {
		wc.legacy, wc.refresh = true, c.Value
	}
	if c, err := r.Cookie(RefreshCookie); err == nil {
		wc.refresh = c.Value
	}
	if c, err := r.Cookie(DeviceCookie); err == nil {
		wc.device = c.Value
	}
	return context.WithValue(ctx, webKey{}, wc)
}

// RefreshToken is the refresh token the browser sent, or "".
func (wc *WebClient) RefreshToken() string { return wc.refresh }

// SetRefreshToken stores the refresh token in the cookie until it expires.
func (wc *WebClient) SetRefreshToken(token string, ttl time.Duration) {
	wc.set(RefreshCookie, token, int(ttl.Seconds()))
	wc.dropLegacy()
}

// ClearRefreshToken deletes the cookie (logout).
func (wc *WebClient) ClearRefreshToken() {
	wc.set(RefreshCookie, "", -1)
	wc.dropLegacy()
}

// DeviceToken is the device cookie the browser sent, or "".
func (wc *WebClient) DeviceToken() string { return wc.device }

// SetDeviceToken stores the device token in its cookie for ttl.
func (wc *WebClient) SetDeviceToken(token string, ttl time.Duration) {
	wc.set(DeviceCookie, token, int(ttl.Seconds()))
}

// set writes a __Host- cookie; a negative maxAge deletes it.
func (wc *WebClient) set(name, value string, maxAge int) {
	http.SetCookie(wc.w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

func (wc *WebClient) dropLegacy() {
	if !wc.legacy {
		return
	}
	wc.legacy = false
	http.SetCookie(wc.w, &http.Cookie{
		Name: LegacyRefreshCookie, Value: "", Path: wc.legacyPath, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}
