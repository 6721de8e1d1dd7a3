// Package playground serves the development GraphiQL page: index.html at
// "/" and its content-hashed JavaScript, CSS and icon under AssetPrefix,
// all embedded in the binary, so the page works offline and under a strict
// Content-Security-Policy.
//
// dist/ is built from src/ by `npm ci && npm run build` (build.mjs, esbuild)
// and committed; building or testing the Go code never needs Node.
package playground

import (
	"bytes"
	"crypto/rand"
	"embed"
	"html"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetPrefix is the path the assets are served under; build.mjs writes
// the same prefix into index.html.
const AssetPrefix = "/playground/"

// CSP returns the Content-Security-Policy of the page and its assets.
// Scripts and stylesheets load only from this origin: no inline script, no
// eval. The one inline <style> element GraphiQL adds (for its dialogs)
// carries the page's nonce, which changes with every response; style
// attributes stay refused (GraphiQL sets styles through the CSSOM, which
// CSP allows). connect-src 'self' is the GraphQL endpoint; under CSP Level
// 3 it also matches ws: and wss: on the same host, for subscriptions.
// img-src allows data: for the icons GraphiQL and CodeMirror draw inline.
// nonce is empty for the assets, which are never documents.
func CSP(nonce string) string {
	style := "style-src 'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	return "default-src 'none'; script-src 'self'; " + style + "; " +
		"img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// indexHTML is the page; Page fills in {{endpoint}} and {{nonce}}.
//
//go:embed dist/index.html
var indexHTML string

//go:embed dist/assets
var dist embed.FS

var assets, _ = fs.Sub(dist, "dist/assets")

// contentTypes is fixed rather than read from the system's MIME tables,
// which differ between machines.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".txt": "text/plain; charset=utf-8",
}

// Page returns the handler of the page, which sends its GraphQL requests to
// endpoint (a same-origin path such as "/query"). Every response has a new
// nonce, so none is stored (the assets it names are cached instead).
func Page(endpoint string) http.Handler {
	page := strings.ReplaceAll(indexHTML, "{{endpoint}}", html.EscapeString(endpoint))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := rand.Text() // 130 bits, base32: valid in a CSP nonce-source
		h := w.Header()
		h.Set("Content-Security-Policy", CSP(nonce))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, strings.ReplaceAll(page, "{{nonce}}", nonce))
	})
}

// Assets returns the handler of the assets, mounted at AssetPrefix. Their
// names carry a hash of their content, so browsers may keep them for a year.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP(""))
		h.Set("X-Content-Type-Options", "nosniff")
		name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
		ctype := contentTypes[path.Ext(name)]
		if !ok || ctype == "" || !fs.ValidPath(name) || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}
