package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireNodeClient returns the directory of a Node program under .ci with
// its npm dependencies installed (.ci/run installs them with npm ci first).
// Without node or the dependencies the test is skipped, except in CI
// (CI=true), where that is a failure.
func requireNodeClient(t *testing.T, dir, module string) string {
	t.Helper()
	dir, _ = filepath.Abs(filepath.Join("..", ".ci", dir))
	_, errNode := exec.LookPath("node")
	_, errMod := os.Stat(filepath.Join(dir, "node_modules", module))
	if errNode == nil && errMod == nil {
		return dir
	}
	msg := "needs node and `npm ci` in " + dir
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// The npm graphql-sse client (distinct connections mode) against the
// server: a subscription without a token is refused with 401
// UNAUTHENTICATED, one with a token receives the posts created, and a
// logout ends it with a last SESSION_ENDED error and complete.
func TestSSEWithGraphQLSSEClient(t *testing.T) {
	t.Parallel()
	dir := requireNodeClient(t, "sse", "graphql-sse")
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "subscribe.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SSE_URL="+s.URL+"/query", "SSE_TOKEN="+tok.Access)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Step    string         `json:"step"`
		Status  int            `json:"status"`
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Payload map[string]any `json:"payload"`
	}
	lines := make(chan line, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = line{Step: "unreadable", Message: sc.Text()}
			}
			lines <- l
		}
	}()
	next := func(within time.Duration) line {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the client exited: %v\n%s", cmd.Wait(), stderr.String())
			}
			return l
		case <-time.After(within):
			t.Fatalf("nothing from the client within %v\n%s", within, stderr.String())
		}
		return line{}
	}

	if l := next(20 * time.Second); l.Step != "refused" || l.Status != 401 || l.Code != "UNAUTHENTICATED" {
		t.Fatalf("unauthenticated subscription: %+v, want refused 401 UNAUTHENTICATED", l)
	}
	// The subscription goes live after its stream starts: post until the
	// client reports one, then once more.
	var first line
	for deadline := time.Now().Add(15 * time.Second); first.Step == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("no event reached the client\n%s", stderr.String())
		}
		s.createPost(t, tok.Access, "probe", "live yet?")
		select {
		case first = <-lines:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if first.Step != "next" {
		t.Fatalf("first event: %+v", first)
	}
	// Events arrive in order: the other probes' come first.
	id := s.createPost(t, tok.Access, "hello", "world")
	for {
		l := next(5 * time.Second)
		post, _ := l.Payload["data"].(map[string]any)["postCreated"].(map[string]any)
		if l.Step != "next" || post == nil {
			t.Fatalf("event: %+v, want postCreated", l)
		}
		if post["id"] != id {
			continue
		}
		if post["title"] != "hello" || post["author"].(map[string]any)["name"] != "Ann" {
			t.Errorf("postCreated=%v", post)
		}
		break
	}

	s.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
	l := next(5 * time.Second)
	errs, _ := l.Payload["errors"].([]any)
	if l.Step != "next" || len(errs) != 1 || !strings.Contains(mustMarshal(errs[0]), `"reason":"SESSION_ENDED"`) {
		t.Fatalf("after logout: %+v, want one error event with SESSION_ENDED", l)
	}
	if l := next(5 * time.Second); l.Step != "complete" {
		t.Fatalf("after logout: %+v, want complete", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v\n%s", err, stderr.String())
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The npm meros client (multipart/mixed, as Apollo Client and urql read
// it) against @defer on the posts feed: an initial part with the page and
// hasNext, then the authors at their paths, the last part with hasNext:
// false.
func TestDeferWithMerosClient(t *testing.T) {
	t.Parallel()
	dir := requireNodeClient(t, "sse", "meros")
	s := newTestEnv(t).start(t)
	tok := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	s.createPost(t, tok.Access, "one", "body")
	s.createPost(t, tok.Access, "two", "body")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "defer.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEFER_URL="+s.URL+"/query", "DEFER_TOKEN="+tok.Access,
		`DEFER_QUERY={ posts(first: 2) { edges { node { title ... @defer(label: "author") { author { name } } } } } }`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v\n%s%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var head struct {
		Status      int    `json:"status"`
		ContentType string `json:"contentType"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &head); err != nil || head.Status != 200 || !strings.HasPrefix(head.ContentType, "multipart/mixed") {
		t.Fatalf("response: %s, want 200 multipart/mixed", lines[0])
	}
	var parts []incrementalPart
	for _, l := range lines[1:] {
		var p struct {
			Part  incrementalPart `json:"part"`
			Error string          `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Error != "" {
			t.Fatalf("client: %s", l)
		}
		parts = append(parts, p.Part)
	}
	if len(parts) < 2 || parts[0].HasNext == nil || !*parts[0].HasNext {
		t.Fatalf("parts: %s, want an initial part with hasNext: true and more", mustMarshal(parts))
	}
	authors := 0
	for _, p := range parts[1:] {
		for _, inc := range p.Incremental {
			if inc.Label == "author" && inc.Data["author"].(map[string]any)["name"] == "Ann" {
				authors++
			}
		}
	}
	if last := parts[len(parts)-1]; authors != 2 || last.HasNext == nil || *last.HasNext {
		t.Errorf("parts: %s, want both authors in later parts and hasNext: false last", mustMarshal(parts))
	}
}
