package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authql/authql/cache/cachetest"
)

// namedQuery is a valid query whose operation name pads it to n bytes:
// one token, however long.
func namedQuery(n int, tag string) string {
	const body = " { me { id } }"
	head := "query Q" + tag
	return head + strings.Repeat("x", max(0, n-len(head)-len(body))) + body
}

// apqBody is a request with a persisted-query hash, and the query if any.
func apqBody(query, hash string) map[string]any {
	b := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}
	if query != "" {
		b["query"] = query
	}
	return b
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A document longer than APP_MAX_QUERY_BYTES is refused before it is
// parsed, over POST and GET alike, with 413 and PAYLOAD_TOO_LARGE; one at
// the limit runs.
func TestQueryTextLimit(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const limit = 64 << 10

	if got := s.do(t, tok.Access, namedQuery(limit, "a"), nil).mustOK(t).str("me.id"); got != tok.UserID {
		t.Errorf("a query of exactly %d bytes: me.id=%q, want %q", limit, got, tok.UserID)
	}
	refused := func(t *testing.T, r gqlResponse) {
		t.Helper()
		if got, want := r.Status, http.StatusRequestEntityTooLarge; got != want {
			t.Errorf("status=%d, want %d", got, want)
		}
		if got, want := r.code(t), "PAYLOAD_TOO_LARGE"; got != want {
			t.Errorf("code=%q, want %q", got, want)
		}
		if got, want := r.Errors[0].Extensions["limit"], "queryBytes"; got != want {
			t.Errorf("limit=%v, want %v", got, want)
		}
		if r.Data != nil {
			t.Errorf("data=%v, want none", r.Data)
		}
	}
	t.Run("POST", func(t *testing.T) {
		refused(t, s.do(t, tok.Access, namedQuery(limit+1, "b"), nil))
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+url.QueryEscape(namedQuery(limit+1, "c")), nil)
		req.Header.Set("Authorization", "Bearer "+tok.Access)
		refused(t, s.send(t, req))
	})
	t.Run("persisted query", func(t *testing.T) {
		q := namedQuery(900<<10, "d")
		refused(t, s.postJSON(t, tok.Access, apqBody(q, sha(q))))
		if keys := cachetest.Keys(t, s.app.rdb, s.app.cfg.RedisPrefix+"apq:*"); len(keys) != 0 {
			t.Errorf("persisted: %v", keys)
		}
	})
}

// A persisted query is stored only once it parsed and validated: an
// invalid document sent with its hash is neither in Redis nor in the
// instance's memory afterwards. The protocol is unchanged for clients.
func TestPersistedQueryStoredOnlyWhenValid(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	tok := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	apqKey := func(hash string) string { return a.app.cfg.RedisPrefix + "apq:" + hash }

	for name, q := range map[string]string{
		"does not parse":    `{ me { id `,
		"does not validate": `{ me { nonsense } }`,
	} {
		t.Run(name, func(t *testing.T) {
			h := sha(q)
			if r := a.postJSON(t, tok.Access, apqBody(q, h)); len(r.Errors) == 0 {
				t.Fatalf("invalid document accepted: %+v", r)
			}
			if n, err := a.app.rdb.Exists(t.Context(), apqKey(h)).Result(); err != nil || n != 0 {
				t.Errorf("stored in Redis: %d keys (%v)", n, err)
			}
			for _, s := range []*testServer{a, b} {
				if got, want := s.postJSON(t, tok.Access, apqBody("", h)).code(t), "PERSISTED_QUERY_NOT_FOUND"; got != want {
					t.Errorf("hash only afterwards: code=%q, want %q", got, want)
				}
			}
		})
	}

	// A valid one: not found, sent with its hash (stored for 24 h), then
	// known by its hash alone on either instance.
	const q = `query MyName { me { name } }`
	h := sha(q)
	r := a.postJSON(t, tok.Access, apqBody("", h))
	if len(r.Errors) != 1 || r.Errors[0].Message != "PersistedQueryNotFound" || r.Errors[0].Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("unknown hash: %+v", r.Errors)
	}
	a.postJSON(t, tok.Access, apqBody(q, h)).mustOK(t)
	if ttl := a.app.rdb.TTL(t.Context(), apqKey(h)).Val(); ttl < 23*time.Hour {
		t.Errorf("TTL of the stored query: %v, want about 24h", ttl)
	}
	for _, s := range []*testServer{a, b} {
		if got := s.postJSON(t, tok.Access, apqBody("", h)).mustOK(t).str("me.name"); got != "Ann" {
			t.Errorf("hash only: me.name=%q, want Ann", got)
		}
	}
	if r := a.postJSON(t, tok.Access, apqBody(`{ me { id } }`, h)); len(r.Errors) != 1 || r.Errors[0].Message != "provided APQ hash does not match query" {
		t.Errorf("wrong hash: %+v", r.Errors)
	}
}

// Operation names are the client's to choose, up to the query limit: the
// api and perf logs carry 64 bytes of one, as the metrics label does.
func TestOperationNameCutInLogs(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_LOG_FORMAT"] = "json"
	e.env["APP_LOG_LEVEL"] = "info"
	e.env["APP_SLOW_THRESHOLD"] = "1ns" // every operation is slow: a perf line too
	logs := &syncBuffer{}
	s := e.startLogged(t, logs)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	q := namedQuery(60<<10, "Huge")
	s.do(t, tok.Access, q, nil).mustOK(t)
	name := strings.Fields(q)[1]

	var api, perf map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for api == nil || perf == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no api and perf line for the operation in %d bytes of log", len(logs.String()))
		}
		for _, l := range logLines(t, logs.String()) {
			if op, _ := l["operation"].(string); strings.HasPrefix(op, "QHuge") {
				switch l["stream"] {
				case "api":
					api = l
				case "perf":
					perf = l
				}
			}
		}
	}
	for stream, l := range map[string]map[string]any{"api": api, "perf": perf} {
		if got, want := l["operation"], name[:64]; got != want {
			t.Errorf("%s line: operation=%.80v…, want the first 64 bytes %v", stream, got, want)
		}
	}
	if strings.Contains(logs.String(), name[:65]) {
		t.Error("the log holds more than 64 bytes of the name")
	}
}
