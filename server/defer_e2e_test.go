package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// incrementalPart is one part of a multipart/mixed response: the initial
// payload (data, hasNext) or a subsequent one (incremental, hasNext).
type incrementalPart struct {
	Data        map[string]any `json:"data"`
	Errors      []gqlError     `json:"errors"`
	HasNext     *bool          `json:"hasNext"`
	Incremental []struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
		Label  string         `json:"label"`
		Path   []any          `json:"path"`
	} `json:"incremental"`
}

// doIncremental POSTs an operation asking for multipart/mixed, as Apollo
// Client asks for an operation with @defer, and reads every part of the
// response with mime/multipart.
func (s *testServer) doIncremental(t *testing.T, token, query string) (*http.Response, []incrementalPart) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "multipart/mixed;deferSpec=20220824, application/json;q=0.9")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		raw, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d, Content-Type %q, want multipart/mixed: %s", res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	var parts []incrementalPart
	mr := multipart.NewReader(res.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(parts), err)
		}
		if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("part %d: Content-Type=%q, want application/json", len(parts), ct)
		}
		var ip incrementalPart
		if err := json.NewDecoder(p).Decode(&ip); err != nil {
			t.Fatalf("part %d is not JSON: %v", len(parts), err)
		}
		parts = append(parts, ip)
	}
	return res, parts
}

// @defer on the posts feed: the page's posts come first, their authors
// in later parts, each at its path and label; the last part says hasNext:
// false. What gqlgen v0.17.98 does not do is pinned too: a deferred field
// is null in the initial payload (not absent), and only fields with a
// resolver of their own are deferred: totalCount, computed with the page,
// comes in the initial payload even inside @defer.
func TestDeferOnPostsFeed(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	for _, title := range []string{"one", "two", "three"} {
		s.createPost(t, tok.Access, title, "body")
	}
	res, parts := s.doIncremental(t, tok.Access, `{
		posts(first: 2) {
			edges { node { id title ... @defer(label: "author") { author { name } } } }
			... @defer(label: "total") { totalCount }
		}
	}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status=%d", res.StatusCode)
	}
	if len(parts) < 2 {
		t.Fatalf("%d parts, want an initial payload and at least one more", len(parts))
	}
	first := parts[0]
	if first.HasNext == nil || !*first.HasNext {
		t.Errorf("initial payload hasNext=%v, want true", first.HasNext)
	}
	posts, _ := first.Data["posts"].(map[string]any)
	edges, _ := posts["edges"].([]any)
	if len(edges) != 2 {
		t.Fatalf("initial payload: %d edges, want 2: %v", len(edges), first.Data)
	}
	for _, e := range edges {
		node := e.(map[string]any)["node"].(map[string]any)
		if node["title"] == nil {
			t.Errorf("initial payload: a node without its title: %v", node)
		}
		if node["author"] != nil {
			t.Errorf("initial payload: author not deferred: %v", node)
		}
	}
	if got := posts["totalCount"]; got != float64(3) {
		t.Errorf("initial payload: totalCount=%v, want 3 (gqlgen defers resolver fields only)", got)
	}
	authors := 0
	for _, p := range parts[1:] {
		for _, inc := range p.Incremental {
			if inc.Label != "author" {
				t.Errorf("part with label %q: %v", inc.Label, inc.Data)
				continue
			}
			authors++
			if got := inc.Data["author"].(map[string]any)["name"]; got != "Ann" {
				t.Errorf("author part at %v: %v, want Ann", inc.Path, inc.Data)
			}
			if len(inc.Path) != 4 || inc.Path[0] != "posts" || inc.Path[3] != "node" {
				t.Errorf("author part path=%v, want [posts edges i node]", inc.Path)
			}
			if len(inc.Errors) > 0 {
				t.Errorf("deferred part with errors: %+v", inc.Errors)
			}
		}
	}
	if authors != 2 {
		t.Errorf("%d author parts, want 2", authors)
	}
	if last := parts[len(parts)-1]; last.HasNext == nil || *last.HasNext {
		t.Errorf("last part hasNext=%v, want false", last.HasNext)
	}

	// The same query again: the response cache, which holds whole
	// responses, must not answer it with the initial part.
	_, again := s.doIncremental(t, tok.Access, `{
		posts(first: 2) {
			edges { node { id title ... @defer(label: "author") { author { name } } } }
			... @defer(label: "total") { totalCount }
		}
	}`)
	incremental := 0
	for _, p := range again {
		incremental += len(p.Incremental)
	}
	if incremental != 2 {
		t.Errorf("second request: %s, want the two authors in later parts again", mustMarshal(again))
	}
}

// @defer where only one response can be sent (plain POST, GET) is refused:
// the client would get null for every deferred field and nothing after.
// Clients that list multipart/mixed after JSON (urql) get JSON as before.
func TestDeferNeedsIncrementalTransport(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, tok.Access, "one", "body")
	r := s.do(t, tok.Access, `{ posts(first: 1) { edges { node { id ... @defer { author { name } } } } } }`, nil)
	if r.Status != http.StatusBadRequest || r.code(t) != "BAD_REQUEST" {
		t.Errorf("@defer over plain POST: status %d errors %+v, want 400 BAD_REQUEST", r.Status, r.Errors)
	}

	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query":"{ posts(first: 1) { edges { node { id author { name } } } } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	req.Header.Set("Accept", "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed")
	if got := s.send(t, req).mustOK(t); !strings.HasPrefix(got.Header.Get("Content-Type"), "application/graphql-response+json") {
		t.Errorf("urql's Accept: Content-Type %q, want JSON", got.Header.Get("Content-Type"))
	}
}
