package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"testing"
)

// A request error (a document that does not parse or validate, variables
// that do not coerce) is answered as GraphQL over HTTP says: 200 under
// application/json, 400 under application/graphql-response+json, with its
// code and no "data" entry, whether the request came by POST or GET.
// .ci/http-audit.sh runs graphql-http's whole audit against a live server.
func TestRequestErrorsFollowGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	cases := []struct {
		name, query string
		vars        map[string]any
		code        string
	}{
		{"parse failure", `{`, nil, "GRAPHQL_PARSE_FAILED"},
		{"validation failure", `{ noSuchField }`, nil, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion failure", `query Q($id: ID!) { post(id: $id) { id } }`, map[string]any{"id": nil}, "GRAPHQL_VALIDATION_FAILED"},
	}
	for _, tc := range cases {
		for _, media := range []struct {
			accept string
			status int
		}{
			{"", http.StatusOK},
			{"application/json", http.StatusOK},
			{"*/*", http.StatusOK},
			{"application/graphql-response+json", http.StatusBadRequest},
		} {
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				t.Run(tc.name+"/"+method+"/accept="+media.accept, func(t *testing.T) {
					var req *http.Request
					if method == http.MethodPost {
						body, _ := json.Marshal(map[string]any{"query": tc.query, "variables": tc.vars})
						req, _ = http.NewRequest(method, s.URL+"/query", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
					} else {
						v := url.Values{"query": {tc.query}}
						if tc.vars != nil {
							b, _ := json.Marshal(tc.vars)
							v.Set("variables", string(b))
						}
						req, _ = http.NewRequest(method, s.URL+"/query?"+v.Encode(), nil)
					}
					if media.accept != "" {
						req.Header.Set("Accept", media.accept)
					}
					res, err := s.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					raw, _ := io.ReadAll(res.Body)
					if got, want := res.StatusCode, media.status; got != want {
						t.Errorf("status=%d, want %d (%s)", got, want, raw)
					}
					wantType := "application/json"
					if media.accept == "application/graphql-response+json" {
						wantType = media.accept
					}
					if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != wantType {
						t.Errorf("Content-Type=%q, want %s", res.Header.Get("Content-Type"), wantType)
					}
					var body map[string]json.RawMessage
					if err := json.Unmarshal(raw, &body); err != nil {
						t.Fatalf("body is not a JSON object: %s", raw)
					}
					if d, ok := body["data"]; ok {
						t.Errorf("data=%s, want no data entry (nothing was executed)", d)
					}
					var out gqlResponse
					_ = json.Unmarshal(raw, &out)
					if got, want := out.code(t), tc.code; got != want {
						t.Errorf("code=%q, want %q", got, want)
					}
				})
			}
		}
	}
	// A field's error is not a request error: 200 under either media type,
	// with data.
	for _, accept := range []string{"application/json", "application/graphql-response+json"} {
		body, _ := json.Marshal(map[string]any{"query": `{ me { id } }`})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		r := s.send(t, req)
		if got, want := r.Status, http.StatusOK; got != want {
			t.Errorf("accept=%s: status=%d, want %d", accept, got, want)
		}
		if got, want := r.code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("accept=%s: code=%q, want %q", accept, got, want)
		}
	}
}
