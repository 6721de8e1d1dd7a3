package main

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Every request the server refuses as a whole gets a GraphQL-shaped JSON
// body with extensions.code, in the media type the client asked for, and
// the status docs/API.md's error table gives; nothing of it runs.
func TestRefusalsAreCodedJSON(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	q := func(query string, params ...string) string {
		v := url.Values{"query": {query}}
		for i := 0; i+1 < len(params); i += 2 {
			v.Set(params[i], params[i+1])
		}
		return "/query?" + v.Encode()
	}
	const typename = `{"query":"{ __typename }"}`
	json_ := map[string]string{"Content-Type": "application/json"}
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		code, allow              string
	}{
		{"POST text/plain", "POST", "/query", typename, map[string]string{"Content-Type": "text/plain"}, 400, "BAD_REQUEST", ""},
		{"POST without Content-Type", "POST", "/query", typename, nil, 400, "BAD_REQUEST", ""},
		{"POST form", "POST", "/query", "query=%7B__typename%7D", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, "BAD_REQUEST", ""},
		{"POST body not JSON", "POST", "/query", `{"query": nope`, json_, 400, "BAD_REQUEST", ""},
		{"POST body empty", "POST", "/query", "", json_, 400, "BAD_REQUEST", ""},
		{"POST without query", "POST", "/query", `{"qeury":"{ __typename }"}`, json_, 400, "BAD_REQUEST", ""},
		{"POST body a JSON array", "POST", "/query", `[]`, json_, 400, "BAD_REQUEST", ""},
		{"POST variables not an object", "POST", "/query", `{"query":"{ __typename }","variables":"x"}`, json_, 400, "BAD_REQUEST", ""},
		{"POST persisted query of another version", "POST", "/query", `{"query":"{ __typename }","extensions":{"persistedQuery":{"version":2,"sha256Hash":"x"}}}`, json_, 400, "BAD_REQUEST", ""},
		{"POST subscription", "POST", "/query", `{"query":"subscription { postDeleted }"}`, json_, 400, "BAD_REQUEST", ""},
		{"POST body over the limit", "POST", "/query", `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`, json_, 413, "PAYLOAD_TOO_LARGE", ""},
		{"PUT", "PUT", "/query", typename, json_, 405, "METHOD_NOT_ALLOWED", "GET, POST"},
		{"DELETE", "DELETE", "/query", "", nil, 405, "METHOD_NOT_ALLOWED", "GET, POST"},
		{"PATCH", "PATCH", "/query", typename, json_, 405, "METHOD_NOT_ALLOWED", "GET, POST"},
		{"OPTIONS without CORS preflight", "OPTIONS", "/query", "", nil, 405, "METHOD_NOT_ALLOWED", "GET, POST"},
		{"GET mutation", "GET", q(`mutation { createPost(input: {title: "t", content: "c"}) { id } }`), "", nil, 405, "METHOD_NOT_ALLOWED", "POST"},
		{"GET subscription", "GET", q(`subscription { postDeleted }`), "", nil, 400, "BAD_REQUEST", ""},
		{"GET without query", "GET", "/query?operationName=Q", "", nil, 400, "BAD_REQUEST", ""},
		{"GET variables not JSON", "GET", q(`{ __typename }`, "variables", "nope"), "", nil, 400, "BAD_REQUEST", ""},
		{"GET extensions not JSON", "GET", q(`{ __typename }`, "extensions", "[1]"), "", nil, 400, "BAD_REQUEST", ""},
		{"GET query string not decodable", "GET", "/query?query=%zz", "", nil, 400, "BAD_REQUEST", ""},
		{"WebSocket upgrade to something else", "GET", "/query", "", map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}, 400, "BAD_REQUEST", ""},
		{"WebSocket of another version", "GET", "/query", "", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 400, "BAD_REQUEST", ""},
		{"WebSocket from a foreign Origin", "GET", "/query", "", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://evil.example"}, 403, "FORBIDDEN", ""},
		{"unknown path", "GET", "/nope", "", nil, 404, "NOT_FOUND", ""},
		{"POST to a GET-only path", "POST", "/healthz", "", nil, 405, "METHOD_NOT_ALLOWED", "GET, HEAD"},
	}
	for _, tc := range cases {
		for _, accept := range []string{"", "application/graphql-response+json"} {
			t.Run(tc.name+"/accept="+accept, func(t *testing.T) {
				req, _ := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+ann.Access)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				res, err := s.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				raw, _ := io.ReadAll(res.Body)
				if got, want := res.StatusCode, tc.status; got != want {
					t.Errorf("status=%d, want %d (%s)", got, want, raw)
				}
				wantType := "application/json"
				if accept != "" {
					wantType = accept
				}
				if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != wantType {
					t.Errorf("Content-Type=%q, want %s", res.Header.Get("Content-Type"), wantType)
				}
				if got := res.Header.Get("Allow"); got != tc.allow {
					t.Errorf("Allow=%q, want %q", got, tc.allow)
				}
				var body gqlResponse
				if err := json.Unmarshal(raw, &body); err != nil {
					t.Fatalf("body is not JSON: %q", raw)
				}
				if got, want := body.code(t), tc.code; got != want {
					t.Errorf("code=%q, want %q (%s)", got, want, body.Errors[0].Message)
				}
				if m := body.Errors[0].Message; strings.Contains(m, "Go value") || strings.Contains(m, "nope") || m == "" {
					t.Errorf("message=%q", m)
				}
			})
		}
	}
	if got := s.count(t, "posts"); got != 0 {
		t.Errorf("posts=%d after refused requests", got)
	}
}
