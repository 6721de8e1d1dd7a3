package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A client that goes away mid-request is no internal error: nothing is
// logged at ERROR (it used to be one line per unfinished field), the
// fields are coded CLIENT_CLOSED_REQUEST, and the abort is counted once.
func TestClientGoneIsNotAnError(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached() // the page is read from the database
	s := e.start(t)
	seed(t, s.app.db.Client, 5, 4)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")

	body, _ := json.Marshal(map[string]any{"query": `{ posts(first: 20) { edges { node { id title author { name } } } } }`})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // gone before the first field ran
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	rec := httptest.NewRecorder()
	s.app.handler.ServeHTTP(rec, req)

	var out gqlResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", rec.Code, rec.Body)
	}
	if len(out.Errors) == 0 {
		t.Fatalf("a cancelled request answered without errors: %s", rec.Body)
	}
	for _, e := range out.Errors {
		if got, want := e.Extensions["code"], "CLIENT_CLOSED_REQUEST"; got != want {
			t.Errorf("error %q at %v: code=%v, want %v", e.Message, e.Path, got, want)
		}
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged at ERROR: %s", line)
		}
	}
	m := scrape(t, s.URL+"/metrics")
	if got, want := sample(t, m, `authql_http_requests_aborted_total`), 1.0; got != want {
		t.Errorf("authql_http_requests_aborted_total=%v, want %v", got, want)
	}
	if got, ok := m[`authql_graphql_responses_total{code="INTERNAL_SERVER_ERROR"}`]; ok {
		t.Errorf("%v INTERNAL_SERVER_ERROR responses, want none", got)
	}
}
