package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
	"github.com/authql/authql/graph/client"
)

// The committed manifests: the TypeScript example's (graphql-codegen's
// client preset; .ci/clients.sh checks it is current) and the Go client's
// (go generate; CI checks it is current).
const (
	webManifest      = "../examples/web/persisted-documents.json"
	goClientManifest = "../graph/client/persisted-documents.json"
)

// manifestByName reads a manifest and returns each operation's document
// and its documentId, by operation name.
func manifestByName(t *testing.T, path string) map[string]manifestDoc {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	op := regexp.MustCompile(`\b(?:query|mutation|subscription)\s+(\w+)`)
	out := map[string]manifestDoc{}
	for hash, text := range m {
		name := op.FindStringSubmatch(text)
		if name == nil {
			t.Fatalf("%s: no named operation in %q", path, text)
		}
		out[name[1]] = manifestDoc{id: "sha256:" + hash, text: text}
	}
	return out
}

type manifestDoc struct{ id, text string }

// getDocument sends a persisted document request by GET.
func (s *testServer) getDocument(t *testing.T, token, id string, vars map[string]any) gqlResponse {
	t.Helper()
	v := url.Values{"documentId": {id}}
	if vars != nil {
		b, _ := json.Marshal(vars)
		v.Set("variables", string(b))
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?"+v.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}

// wantRefused fails unless r is refused with this status and code, and
// nothing ran (no data).
func wantRefused(t *testing.T, what string, r gqlResponse, status int, code string) {
	t.Helper()
	if got := r.Status; got != status {
		t.Errorf("%s: status=%d, want %d (%+v)", what, got, status, r.Errors)
	}
	if got := r.code(t); got != code {
		t.Errorf("%s: code=%q, want %q (%s)", what, got, code, r.Errors[0].Message)
	}
	if r.Data != nil {
		t.Errorf("%s: data=%v, want none", what, r.Data)
	}
}

// A server that runs only the TypeScript example's documents runs the
// example's operations, named by documentId (POST and GET) or sent as the
// exact text of a manifest entry, and refuses anything else before parsing
// it: an ad-hoc query, an unknown documentId, a persisted query it does not
// have.
func TestTrustedDocumentsRunTheWebExample(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.env["APP_TRUSTED_DOCUMENTS"] = webManifest
	s := env.start(t)
	docs := manifestByName(t, webManifest)

	// The example's operations, by documentId only.
	reg := s.postJSON(t, "", map[string]any{"documentId": docs["Register"].id, "variables": map[string]any{
		"input": map[string]any{"email": "ann@example.com", "password": "plum-tree-42", "name": "Ann"}}}).mustOK(t)
	token := reg.str("register.accessToken")
	if token == "" {
		t.Fatalf("register: no access token: %+v", reg)
	}
	if got := s.postJSON(t, token, map[string]any{"documentId": docs["Me"].id}).mustOK(t).str("me.email"); got != "ann@example.com" {
		t.Errorf("me.email=%q, want ann@example.com", got)
	}
	created := s.postJSON(t, token, map[string]any{"documentId": docs["CreatePost"].id, "variables": map[string]any{
		"input": map[string]any{"title": "Trusted", "content": "only known documents run"}}}).mustOK(t)
	id := created.str("createPost.id")
	if got := s.getDocument(t, token, docs["Post"].id, map[string]any{"id": id}).mustOK(t).str("post.title"); got != "Trusted" {
		t.Errorf("GET post.title=%q, want Trusted", got)
	}
	if got := s.postJSON(t, token, map[string]any{"documentId": docs["Posts"].id, "variables": map[string]any{"first": 10}}).mustOK(t).get("posts.totalCount"); got != 1.0 {
		t.Errorf("posts.totalCount=%v, want 1", got)
	}

	// The exact text of a manifest entry, alone or with its documentId.
	if got := s.do(t, token, docs["Me"].text, nil).mustOK(t).str("me.name"); got != "Ann" {
		t.Errorf("text: me.name=%q, want Ann", got)
	}
	s.postJSON(t, token, map[string]any{"documentId": docs["Me"].id, "query": docs["Me"].text}).mustOK(t)
	// A persisted query by the hash of a manifest entry, never stored.
	s.postJSON(t, token, map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{
		"version": 1, "sha256Hash": strings.TrimPrefix(docs["Me"].id, "sha256:")}}}).mustOK(t)

	// Anything else is refused, before it is parsed.
	adhoc := `{ me { id email } }`
	wantRefused(t, "ad-hoc query", s.do(t, token, adhoc, nil), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
	wantRefused(t, "unparsable ad-hoc query", s.do(t, token, `{`, nil), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
	wantRefused(t, "the example's text, reformatted", s.do(t, token, docs["Me"].text+"\n", nil), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
	wantRefused(t, "unknown documentId", s.postJSON(t, token, map[string]any{"documentId": "sha256:" + sha256Hex(adhoc)}),
		http.StatusBadRequest, "PERSISTED_DOCUMENT_NOT_FOUND")
	wantRefused(t, "unknown documentId by GET", s.getDocument(t, token, "sha256:"+sha256Hex(adhoc), nil),
		http.StatusBadRequest, "PERSISTED_DOCUMENT_NOT_FOUND")
	wantRefused(t, "documentId of another kind", s.postJSON(t, token, map[string]any{"documentId": "md5:0cc175b9c0f1b6a831c399e269772661"}),
		http.StatusBadRequest, "BAD_REQUEST")
	wantRefused(t, "query not the documentId's", s.postJSON(t, token, map[string]any{"documentId": docs["Me"].id, "query": adhoc}),
		http.StatusBadRequest, "BAD_REQUEST")
	apq := func(query string) map[string]any {
		b := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha256Hex(adhoc)}}}
		if query != "" {
			b["query"] = query
		}
		return b
	}
	wantRefused(t, "persisted query of an unknown document", s.postJSON(t, token, apq(adhoc)), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
	wantRefused(t, "its hash, after", s.postJSON(t, token, apq("")), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
	wantRefused(t, "a mutation's documentId by GET", s.getDocument(t, token, docs["Logout"].id, nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")

	if got := s.count(t, "posts"); got != 1 {
		t.Errorf("posts=%d, want 1", got)
	}
	// docs/API.md's curl example names the example's Me by its id.
	if api, err := os.ReadFile("../docs/API.md"); err != nil || !strings.Contains(string(api), docs["Me"].id) {
		t.Errorf("docs/API.md does not name the web example's Me as %s (%v)", docs["Me"].id, err)
	}
}

// The Go client's manifest (go generate) lets the generated client run
// against a server that runs only trusted documents; two manifests load
// together.
func TestTrustedDocumentsRunTheGoClient(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.env["APP_TRUSTED_DOCUMENTS"] = goClientManifest + "," + webManifest
	s := env.start(t)
	ctx := context.Background()

	reg, err := client.Register(ctx, s.gql(""), client.RegisterInput{Email: "ann@example.com", Password: "plum-tree-42", Name: "Ann"})
	mustNil(t, "register", err)
	c := s.gql(reg.Register.AccessToken)
	_, err = client.CreatePost(ctx, c, client.CreatePostInput{Title: "Go", Content: "from the Go client"})
	mustNil(t, "createPost", err)
	first := 10
	posts, err := client.Posts(ctx, c, &first, nil, nil)
	mustNil(t, "posts", err)
	if got, want := posts.Posts.TotalCount, 1; got != want {
		t.Errorf("totalCount=%d, want %d", got, want)
	}
	_, err = client.Me(ctx, c)
	mustNil(t, "me", err)
	// The web example's documents run on the same server.
	web := manifestByName(t, webManifest)
	s.postJSON(t, reg.Register.AccessToken, map[string]any{"documentId": web["Me"].id}).mustOK(t)
	wantRefused(t, "ad-hoc", s.do(t, reg.Register.AccessToken, `{ me { id } }`, nil), http.StatusForbidden, "DOCUMENT_NOT_TRUSTED")
}

// Without trusted documents any document runs, and a documentId names one
// stored as a persisted query (APQ), so a client may send ids alone once
// the server has its documents.
func TestDocumentIDWithoutTrustedDocuments(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	query := `query Typename { __typename }`
	hash := sha256Hex(query)
	wantRefused(t, "documentId not stored yet", s.postJSON(t, "", map[string]any{"documentId": "sha256:" + hash}),
		http.StatusBadRequest, "PERSISTED_DOCUMENT_NOT_FOUND")
	s.postJSON(t, "", map[string]any{"query": query, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}).mustOK(t)
	if got := s.postJSON(t, "", map[string]any{"documentId": "sha256:" + hash}).mustOK(t).str("__typename"); got != "Query" {
		t.Errorf("__typename=%q, want Query", got)
	}
	if got := s.getDocument(t, "", "sha256:"+hash, nil).mustOK(t).str("__typename"); got != "Query" {
		t.Errorf("GET __typename=%q, want Query", got)
	}
	s.do(t, "", `{ __typename }`, nil).mustOK(t)
}

// A manifest that does not read, or whose hashes are not its documents'
// SHA-256, stops the start.
func TestTrustedDocumentsBadManifestStopsTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wrong := filepath.Join(dir, "sha1.json")
	// graphql-codegen's default algorithm is sha1: such a manifest is refused.
	if err := os.WriteFile(wrong, []byte(`{"0a4d55a8d778e5022fab701977c5d840bbc486d0": "{ __typename }"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope.json"), "sha1": wrong} {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.env["APP_TRUSTED_DOCUMENTS"] = webManifest + "," + path
			a, err := newApp(context.Background(), env.config(t), slog.New(slog.DiscardHandler), deps{
				now: env.clock.Now,
				rdb: cachetest.Open(t, env.redis.Config),
			})
			if err == nil {
				a.Close()
				t.Fatal("the server started")
			}
			if !strings.Contains(err.Error(), "APP_TRUSTED_DOCUMENTS") || !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Errorf("err=%v, want one naming APP_TRUSTED_DOCUMENTS and the file", err)
			}
		})
	}
}

// Subscriptions are held to the trusted documents too: an ad-hoc one is
// refused with the code.
func TestTrustedDocumentsHoldSubscriptions(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	env.env["APP_TRUSTED_DOCUMENTS"] = webManifest
	s := env.start(t)
	docs := manifestByName(t, webManifest)
	reg := s.postJSON(t, "", map[string]any{"documentId": docs["Register"].id, "variables": map[string]any{
		"input": map[string]any{"email": "ann@example.com", "password": "plum-tree-42", "name": "Ann"}}}).mustOK(t)
	c, first, err := dialWS(t, s, reg.str("register.accessToken"), false)
	if err != nil || first.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, first)
	}
	c.subscribe("1", `subscription { postDeleted }`, nil)
	m, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// As over gqlgen's transport: an operation refused before it ran is a
	// result with errors and no data, then complete.
	var res struct{ Errors []gqlError }
	_ = json.Unmarshal(m.Payload, &res)
	if m.ID != "1" || m.Type != "next" || len(res.Errors) != 1 || res.Errors[0].Extensions["code"] != "DOCUMENT_NOT_TRUSTED" {
		t.Fatalf("got %s %s, want a result with the error DOCUMENT_NOT_TRUSTED", m.Type, m.Payload)
	}
	if m, err := c.read(5 * time.Second); err != nil || m.ID != "1" || m.Type != "complete" {
		t.Fatalf("after the refusal: %+v %v, want complete", m, err)
	}
}
