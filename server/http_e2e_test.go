package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	t.Run("body over the limit is 413", func(t *testing.T) {
		big := `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		r := s.send(t, req)
		if got, want := r.Status, http.StatusRequestEntityTooLarge; got != want {
			t.Errorf("status=%d, want %d", got, want)
		}
		if got, want := r.code(t), "PAYLOAD_TOO_LARGE"; got != want {
			t.Errorf("code=%q, want %q", got, want)
		}
	})
	t.Run("chunked body over the limit is 413", func(t *testing.T) {
		big := `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1 // sent chunked, no Content-Length to trust
		req.Header.Set("Content-Type", "application/json")
		if got, want := s.send(t, req).Status, http.StatusRequestEntityTooLarge; got != want {
			t.Errorf("status=%d, want %d", got, want)
		}
	})
	t.Run("body that is not JSON", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query": nope`))
		req.Header.Set("Content-Type", "application/json")
		r := s.send(t, req)
		if got, want := r.Status, http.StatusBadRequest; got != want {
			t.Errorf("status=%d, want %d", got, want)
		}
		if got, want := r.code(t), "BAD_REQUEST"; got != want {
			t.Errorf("code=%q, want %q", got, want)
		}
		if strings.Contains(r.Errors[0].Message, "nope") {
			t.Errorf("message echoes the body: %q", r.Errors[0].Message)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Content-Type", "text/plain")
		r := s.send(t, req)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("status=%d, want a 4xx", r.Status)
		}
	})
	t.Run("GET runs queries", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+url.QueryEscape(`{ me { name } }`), nil)
		req.Header.Set("Authorization", "Bearer "+tok.Access)
		r := s.send(t, req).mustOK(t)
		if got, want := r.str("me.name"), "Ann"; got != want {
			t.Errorf("me.name=%q, want %q", got, want)
		}
	})
	t.Run("GET refuses mutations", func(t *testing.T) {
		q := `mutation { createPost(input: {title: "t", content: "c"}) { id } }`
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+tok.Access)
		r := s.send(t, req)
		if len(r.Errors) == 0 {
			t.Fatal("mutation over GET was accepted")
		}
		if got := s.count(t, "posts"); got != 0 {
			t.Errorf("posts=%d after a GET mutation", got)
		}
	})
	t.Run("JSON with security headers", func(t *testing.T) {
		r := s.do(t, "", `{ __typename }`, nil).mustOK(t)
		for k, want := range map[string]string{
			"Content-Type":           "application/json",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s=%q, want %q", k, got, want)
			}
		}
		if r.Header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID")
		}
	})
	t.Run("health and readiness", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			res, err := s.Client().Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s: status=%d", path, res.StatusCode)
			}
		}
	})
	t.Run("playground", func(t *testing.T) {
		res, err := s.Client().Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("/query")) {
			t.Errorf("playground: status=%d, body mentions /query: %v", res.StatusCode, bytes.Contains(body, []byte("/query")))
		}
	})
}

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_CORS_ORIGINS"] = "https://app.example.com"
	s := e.start(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		res, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if got, want := preflight("https://app.example.com").Header.Get("Access-Control-Allow-Origin"), "https://app.example.com"; got != want {
		t.Errorf("allowed origin: Access-Control-Allow-Origin=%q, want %q", got, want)
	}
	if got := preflight("https://evil.example.com").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin=%q, want none", got)
	}
}

// Internal failures reach the client as "internal error", never as SQL or
// driver text, and are logged with the request id.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	_ = s.app.db.SQL.Close() // the database goes away under the server
	r := s.do(t, tok.Access, `{ posts { totalCount } }`, nil)
	if got, want := r.code(t), "INTERNAL_SERVER_ERROR"; got != want {
		t.Fatalf("code=%q, want %q", got, want)
	}
	if got, want := r.Errors[0].Message, "internal error"; got != want {
		t.Errorf("message=%q, want %q", got, want)
	}
	if got := s.logs.String(); !strings.Contains(got, "request_id=") || !strings.Contains(got, "database is closed") {
		t.Errorf("the real error was not logged with its request id: %s", got)
	}
	res, err := s.Client().Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Errorf("readyz with the database gone: status=%d, want %d", got, want)
	}
}

// With Redis unreachable nothing is accepted that should have been checked.
func TestRedisDownRefusesTokens(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if e.redis.Mini == nil {
		t.Skip("stopping a shared real Redis would disturb other tests; the fault suite covers it")
	}
	s := e.start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	e.redis.Mini.Close()
	r := s.do(t, tok.Access, `{ me { id } }`, nil)
	if got, want := r.code(t), "SERVICE_UNAVAILABLE"; got != want {
		t.Errorf("code=%q, want %q", got, want)
	}
	if r.get("me") != nil {
		t.Errorf("data leaked: %v", r.Data)
	}
}
