package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/graph/store"
)

// Every error of a known kind reaches the client as its row of problems
// says, however deeply it is wrapped.
func TestPresenterCodesByProblems(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		code       string
		reason     string
		message    string
		status     int // of the whole response; 0: left alone
		retryAfter int // the response's Retry-After
		logged     bool
	}{
		{"expired token", auth.ErrTokenExpired, CodeUnauthenticated, "TOKEN_EXPIRED", auth.ErrTokenExpired.Error(), 0, 0, false},
		{"refresh reused", auth.ErrRefreshReused, CodeUnauthenticated, "REFRESH_TOKEN_REUSED", auth.ErrRefreshReused.Error(), 0, 0, false},
		{"forbidden", auth.ErrForbidden, CodeForbidden, "", auth.ErrForbidden.Error(), 0, 0, false},
		{"not found", errNotFound, CodeNotFound, "", "not found", 0, 0, false},
		{"ent not found", &ent.NotFoundError{}, CodeNotFound, "", "not found", 0, 0, false},
		{"bad cursor", store.ErrBadCursor, CodeBadUserInput, "", "cursor is not one of this list's", 0, 0, false},
		{"subscriptions", errTooManySubscriptions, CodeLimitExceeded, "", errTooManySubscriptions.Error(), 0, 0, false},
		{"redis down", rdb.ErrUnavailable, CodeServiceUnavailable, "", "service temporarily unavailable; retry shortly", http.StatusServiceUnavailable, 1, true},
		{"redis down, wrapped by auth", rdb.Unavailable("check session", errors.New("dial tcp: refused")), CodeServiceUnavailable, "", "service temporarily unavailable; retry shortly", http.StatusServiceUnavailable, 1, true},
		{"busy", auth.ErrBusy, CodeServiceUnavailable, "", auth.ErrBusy.Error(), http.StatusServiceUnavailable, 1, false},
		{"rate limited in a field", &auth.RateLimitError{Scope: "login", RetryAfter: 30 * time.Second}, CodeRateLimited, "", "too many login requests; retry after 30 s", 0, 30, false},
		{"unknown", errors.New("pq: connection reset"), CodeInternal, "", "internal error", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			st := &responseStatus{}
			ctx := context.WithValue(t.Context(), responseStatusKey{}, st)
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			got := errorPresenter(log)(ctx, fmt.Errorf("resolve: %w", tc.err))
			if c := got.Extensions["code"]; c != tc.code {
				t.Errorf("code=%v, want %v", c, tc.code)
			}
			if r, _ := got.Extensions["reason"].(string); r != tc.reason {
				t.Errorf("reason=%q, want %q", r, tc.reason)
			}
			if got.Message != tc.message {
				t.Errorf("message=%q, want %q", got.Message, tc.message)
			}
			status, retry, _ := st.get()
			if status != tc.status {
				t.Errorf("response status=%d, want %d", status, tc.status)
			}
			if retry != tc.retryAfter {
				t.Errorf("Retry-After=%d, want %d", retry, tc.retryAfter)
			}
			if logged := logs.Len() > 0; logged != tc.logged {
				t.Errorf("logged=%v, want %v (%s)", logged, tc.logged, logs.String())
			}
		})
	}
}

// A code has one status for a request refused as a whole, whichever row
// gives it; a row that refuses requests says with which status, and a row
// without an error to match exists only to give its code a status.
func TestProblemsAgreeOnStatus(t *testing.T) {
	status := map[string]int{}
	for i, p := range problems {
		switch {
		case p.refuses && p.status == 0:
			t.Errorf("row %d (%s) refuses requests with no status", i, p.code)
		case p.match == nil && p.status == 0:
			t.Errorf("row %d (%s) matches no error and gives no status", i, p.code)
		}
		if p.status == 0 {
			continue
		}
		if s, ok := status[p.code]; ok && s != p.status {
			t.Errorf("%s: statuses %d and %d", p.code, s, p.status)
		}
		status[p.code] = p.status
	}
	for code, want := range map[string]int{
		CodeBadRequest:         http.StatusBadRequest,
		CodeForbidden:          http.StatusForbidden,
		CodeHTTPSRequired:      http.StatusForbidden,
		CodeNotFound:           http.StatusNotFound,
		CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
		CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
		CodeRateLimited:        http.StatusTooManyRequests,
		CodeInternal:           http.StatusInternalServerError,
		CodeServiceUnavailable: http.StatusServiceUnavailable,
		CodeUnauthenticated:    http.StatusBadRequest, // never refuses a whole request
	} {
		if got := RefusalStatus(code); got != want {
			t.Errorf("RefusalStatus(%s)=%d, want %d", code, got, want)
		}
	}
}
