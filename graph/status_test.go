package graph

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusWriter(t *testing.T) {
	t.Run("records what it sends", func(t *testing.T) {
		rec := httptest.NewRecorder()
		w := NewStatusWriter(rec)
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusTeapot) // ignored, as net/http ignores it
		_, _ = w.Write([]byte("body"))
		if got, want := w.Status(), http.StatusCreated; got != want {
			t.Errorf("Status()=%d, want %d", got, want)
		}
		if got, want := rec.Code, http.StatusCreated; got != want {
			t.Errorf("sent %d, want %d", got, want)
		}
		if got := rec.Body.String(); got != "body" {
			t.Errorf("body=%q, want %q", got, "body")
		}
	})
	t.Run("an informational status is not the answer", func(t *testing.T) {
		w := NewStatusWriter(httptest.NewRecorder())
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusAccepted)
		if got, want := w.Status(), http.StatusAccepted; got != want {
			t.Errorf("Status()=%d, want %d", got, want)
		}
	})
	t.Run("a handler that only writes sent 200", func(t *testing.T) {
		w := NewStatusWriter(httptest.NewRecorder())
		_, _ = w.Write([]byte("x"))
		if got, want := w.Status(), http.StatusOK; got != want {
			t.Errorf("Status()=%d, want %d", got, want)
		}
	})
	t.Run("holds back an error response", func(t *testing.T) {
		rec := httptest.NewRecorder()
		w := HoldErrors(rec)
		w.Header().Set("Allow", "GET")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte("405 method not allowed"))
		if got, want := w.Held(), http.StatusMethodNotAllowed; got != want {
			t.Errorf("Held()=%d, want %d", got, want)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("the held response's body was sent: %q", rec.Body.String())
		}
		if got := rec.Header().Get("Allow"); got != "GET" {
			t.Errorf("Allow=%q, want the handler's headers kept for the caller's answer", got)
		}
	})
	t.Run("passes any other response", func(t *testing.T) {
		rec := httptest.NewRecorder()
		w := HoldErrors(rec)
		w.WriteHeader(http.StatusMovedPermanently)
		_, _ = w.Write([]byte("moved"))
		if w.Held() != 0 || rec.Code != http.StatusMovedPermanently || rec.Body.String() != "moved" {
			t.Errorf("held %d, sent %d %q; want nothing held, 301 \"moved\" sent", w.Held(), rec.Code, rec.Body.String())
		}
	})
	t.Run("sends the status the request was refused with", func(t *testing.T) {
		rec := httptest.NewRecorder()
		st := &responseStatus{}
		st.refuse(http.StatusTooManyRequests, 7)
		w := &StatusWriter{ResponseWriter: rec, refused: st}
		_, _ = w.Write([]byte("{}"))
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "7" {
			t.Errorf("sent %d with Retry-After %q, want 429 with 7", rec.Code, rec.Header().Get("Retry-After"))
		}
		if got, want := w.Status(), http.StatusTooManyRequests; got != want {
			t.Errorf("Status()=%d, want %d", got, want)
		}
	})
}
