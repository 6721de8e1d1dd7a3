package main

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/authql/authql/server/playground"
)

// pageRef is a URL the playground page loads, and what loads it.
type pageRef struct{ tag, url string }

// get fetches path from the server, failing the test on a transport error.
func (s *testServer) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	res, err := s.Client().Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// The page at / runs under its own strict CSP: it loads scripts, styles and
// its icon from this origin only, has no inline script, style or event
// handler, and hands a fresh nonce to the one <style> GraphiQL adds.
func TestPlaygroundPage(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)

	res, body := s.get(t, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status=%d", res.StatusCode)
	}
	csp := res.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`'nonce-([A-Za-z0-9+/_=-]+)'`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("CSP=%q, want a style nonce", csp)
	}
	nonce := m[1]
	if got, want := csp, playground.CSP(nonce); got != want {
		t.Errorf("CSP=%q, want %q", got, want)
	}
	for _, directive := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self' 'nonce-" + nonce + "'",
		"img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
	} {
		if !strings.Contains(csp, directive+";") && !strings.HasSuffix(csp, directive) {
			t.Errorf("CSP=%q lacks %q", csp, directive)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP=%q allows something unsafe", csp)
	}
	for h, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s=%q, want %q", h, got, want)
		}
	}

	refs, pageNonce, endpoint := inspectPage(t, string(body))
	if pageNonce != nonce {
		t.Errorf("page nonce=%q, CSP nonce=%q", pageNonce, nonce)
	}
	if endpoint != "/query" {
		t.Errorf("data-endpoint=%q, want /query", endpoint)
	}
	kinds := map[string]int{}
	for _, ref := range refs {
		kinds[ref.tag]++
		if !strings.HasPrefix(ref.url, playground.AssetPrefix) {
			t.Errorf("<%s> loads %q: not one of our assets", ref.tag, ref.url)
			continue
		}
		t.Run(ref.url, func(t *testing.T) {
			res, body := s.get(t, ref.url)
			if res.StatusCode != http.StatusOK || len(body) == 0 {
				t.Fatalf("status=%d, %d bytes", res.StatusCode, len(body))
			}
			if got, want := res.Header.Get("Content-Security-Policy"), playground.CSP(""); got != want {
				t.Errorf("CSP=%q, want %q", got, want)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options=%q", got)
			}
			if got, want := res.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
				t.Errorf("Cache-Control=%q, want %q", got, want)
			}
			want := map[string]string{"script": "text/javascript", "stylesheet": "text/css", "icon": "image/svg+xml"}[ref.tag]
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, want) {
				t.Errorf("Content-Type=%q, want %s", got, want)
			}
			if ref.tag == "script" && regexp.MustCompile(`https?://[^"'\s]*(unpkg|jsdelivr|cdn|googleapis)`).Match(body) {
				t.Error("the bundle names a CDN")
			}
		})
	}
	if kinds["script"] != 1 || kinds["stylesheet"] != 1 {
		t.Errorf("page loads %v, want one script and one stylesheet", kinds)
	}

	// A nonce is good for one response only.
	res2, _ := s.get(t, "/")
	if res2.Header.Get("Content-Security-Policy") == csp {
		t.Error("two responses share a nonce")
	}
	// API responses keep their own, stricter policy.
	if got, want := s.do(t, "", `{ __typename }`, nil).Header.Get("Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'"; got != want {
		t.Errorf("API CSP=%q, want %q", got, want)
	}
	for _, path := range []string{
		playground.AssetPrefix, playground.AssetPrefix + "nope.js", playground.AssetPrefix + "../playground.go",
		playground.AssetPrefix + "%2e%2e/playground.go", playground.AssetPrefix + "assets",
	} {
		if res, _ := s.get(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status=%d, want 404", path, res.StatusCode)
		}
	}
}

// inspectPage parses the page and returns the URLs it loads, the nonce it
// carries and its GraphQL endpoint. It fails the test on anything inline
// that the CSP would have to allow: a script without src, a <style>, a
// style attribute or an event handler attribute.
func inspectPage(t *testing.T, page string) (refs []pageRef, nonce, endpoint string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	inScript := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("parse the page: %v", z.Err())
			}
			return refs, nonce, endpoint
		case html.TextToken:
			if inScript && strings.TrimSpace(string(z.Text())) != "" {
				t.Errorf("inline script: %q", z.Text())
			}
		case html.EndTagToken:
			inScript = false
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attr := map[string]string{}
			for _, a := range tok.Attr {
				attr[a.Key] = a.Val
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s %s=%q>: inline style or handler", tok.Data, a.Key, a.Val)
				}
			}
			switch tok.Data {
			case "script":
				inScript = true
				if attr["src"] == "" {
					t.Error("a <script> without src")
				}
				refs = append(refs, pageRef{"script", attr["src"]})
			case "style":
				t.Error("an inline <style>")
			case "link":
				refs = append(refs, pageRef{attr["rel"], attr["href"]})
			case "meta":
				if attr["property"] == "csp-nonce" {
					nonce = attr["nonce"]
				}
			case "div":
				if attr["id"] == "root" {
					endpoint = attr["data-endpoint"]
				}
			}
		}
	}
}

// With the playground off, neither the page nor its assets are served.
func TestPlaygroundOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	on := e.start(t)
	e.env["APP_PLAYGROUND"] = "false"
	off := e.start(t)
	_, page := on.get(t, "/")
	refs, _, _ := inspectPage(t, string(page))
	if len(refs) == 0 {
		t.Fatal("the page loads nothing")
	}
	for _, path := range []string{"/", refs[0].url} {
		if res, _ := on.get(t, path); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the playground on: status=%d", path, res.StatusCode)
		}
		if res, _ := off.get(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with APP_PLAYGROUND=false: status=%d, want 404", path, res.StatusCode)
		}
	}
}
