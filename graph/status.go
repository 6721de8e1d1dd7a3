package graph

import (
	"context"
	"net/http"
	"strconv"
	"sync"
)

// StatusWriter is the server's one wrapper of a response writer. It
// records the status a response is sent with (for metrics and logs) and,
// as each use needs, holds back an error response so that its caller can
// answer in its place (HoldErrors), or sends the status the GraphQL layer
// refused the request with (withResponseStatus).
type StatusWriter struct {
	http.ResponseWriter
	holdErrors bool
	refused    *responseStatus // if set, its status replaces the handler's
	status     int             // sent, or held back
	held       bool
}

// NewStatusWriter returns a writer that passes everything to w and
// records the status.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w}
}

// HoldErrors returns a writer that passes everything to w but an error
// response (status 400 and up), of which nothing is sent: Held then
// reports its status, and the caller answers instead (the mux and the
// WebSocket library answer in text/plain, every refusal of ours is coded
// JSON). The 101 of an upgrade and the hijack pass through.
func HoldErrors(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, holdErrors: true}
}

// WriteHeader sends (or holds back) the status; a second status is
// ignored, as net/http ignores it. Informational statuses (1xx) pass
// through and are not the response's status.
func (w *StatusWriter) WriteHeader(code int) {
	switch {
	case w.status != 0:
		return
	case code < http.StatusOK:
		w.ResponseWriter.WriteHeader(code)
		return
	case w.refused != nil:
		code = w.refused.apply(w.Header(), code)
	}
	w.status = code
	if w.holdErrors && code >= http.StatusBadRequest {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.held {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what was written so far (event streams): the status
// first, if none was sent, as Write would. A held error is not sent.
func (w *StatusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.held {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer
// (deadlines, flushing, hijacking for WebSockets).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status the response was sent with: 200 if the handler
// wrote nothing.
func (w *StatusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Held returns the status of the error response held back, 0 if none was.
func (w *StatusWriter) Held() int {
	if !w.held {
		return 0
	}
	return w.status
}

// responseStatus lets the GraphQL layer choose the HTTP status of a request
// it refuses as a whole (the transports pick 200 or 400 themselves, see
// transport.go).
// Field errors are presented concurrently, hence the lock.
type responseStatus struct {
	mu         sync.Mutex
	status     int
	retryAfter int
	allow      string
}

// refuse sets the status of the whole response, unless one is set already.
func (s *responseStatus) refuse(status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == 0 {
		s.status = status
	}
	s.retryAfter = max(s.retryAfter, retryAfter)
}

// retryAt raises the Retry-After of the response.
func (s *responseStatus) retryAt(seconds int) {
	s.mu.Lock()
	s.retryAfter = max(s.retryAfter, seconds)
	s.mu.Unlock()
}

// allowOnly sets the Allow header of a 405 response.
func (s *responseStatus) allowOnly(methods string) {
	s.mu.Lock()
	s.allow = methods
	s.mu.Unlock()
}

func (s *responseStatus) get() (status, retryAfter int, allow string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.retryAfter, s.allow
}

// apply sets the headers of the response about to be sent with code, and
// returns the status to send instead: the refusal's, if there was one.
func (s *responseStatus) apply(h http.Header, code int) int {
	status, retry, allow := s.get()
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	if allow != "" {
		h.Set("Allow", allow)
	}
	if status != 0 {
		return status
	}
	return code
}

type responseStatusKey struct{}

func responseStatusFrom(ctx context.Context) *responseStatus {
	s, _ := ctx.Value(responseStatusKey{}).(*responseStatus)
	return s
}

func withResponseStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &responseStatus{}
		ctx := context.WithValue(r.Context(), responseStatusKey{}, st)
		if r.Header.Get("Upgrade") != "" {
			ctx = context.WithValue(ctx, liveConnKey{}, &liveConn{})
		}
		next.ServeHTTP(&StatusWriter{ResponseWriter: w, refused: st}, r.WithContext(ctx))
	})
}
