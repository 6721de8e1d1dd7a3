package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"strings"

	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/graph/client"
)

// The pages the links of mails lead to (mail.VerifyPath, mail.ResetPath),
// for deployments whose front end has none of its own: APP_PUBLIC_URL
// points at this server by default in development.
//
//	GET  /verify-email?token=T     a page whose button confirms the address
//	POST /verify-email             verifyEmail(token)
//	GET  /reset-password?token=T   a form for the new password
//	GET  /reset-password           a form asking for the address to mail a link to
//	POST /reset-password           resetPassword(token, newPassword) or requestPasswordReset(email)
//
// A GET never spends a token: mail scanners and link previews fetch links,
// and would otherwise use them up before the owner clicks. Only the form's
// POST does, through the same GraphQL mutations as any client (api: rate
// limits, error codes, logs): the Go client's documents, so they run where
// only trusted documents do (APP_TRUSTED_DOCUMENTS lists its manifest).

// pageStyle is the pages' only style, allowed by its hash (pageCSP).
const pageStyle = `body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a}` +
	`input,button{font:inherit;padding:.5rem;margin:.25rem 0;width:100%;box-sizing:border-box}button{background:#1a56db;color:#fff;border:0;border-radius:4px}`

// pageCSP allows the style above, forms posted to this origin, and nothing
// else: no script, no image, no frame.
func pageCSP() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><style>{{.Style}}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}">
{{if .Token}}<input type="hidden" name="token" value="{{.Token}}">{{end}}
{{if eq .Form "password"}}<label for="p">New password (8 to 128 characters)</label>
<input id="p" type="password" name="newPassword" minlength="8" maxlength="128" required autocomplete="new-password">{{end}}
{{if eq .Form "email"}}<label for="e">E-mail address of the account</label>
<input id="e" type="email" name="email" required autocomplete="email">{{end}}
<button type="submit">{{.Button}}</button>
</form>{{end}}
</body></html>
`))

// page is what pageTemplate shows.
type page struct {
	Title, Message string
	Form           string // "", "confirm", "password" or "email"
	Action, Token  string
	Button         string
	Style          template.CSS
	status         int
}

func (a *app) accountPages(mux *http.ServeMux, api http.Handler) {
	mux.HandleFunc("GET "+mail.VerifyPath, func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		if tok == "" {
			writePage(w, page{Title: "Confirm your e-mail address", Message: "This link has no token: open the link of the mail exactly as it was sent.", status: http.StatusBadRequest})
			return
		}
		writePage(w, page{Title: "Confirm your e-mail address", Form: "confirm", Action: mail.VerifyPath, Token: tok, Button: "Confirm my address"})
	})
	mux.HandleFunc("POST "+mail.VerifyPath, func(w http.ResponseWriter, r *http.Request) {
		msg, ok := runMutation(api, r, client.VerifyEmail_Operation, map[string]any{"token": r.PostFormValue("token")})
		if !ok {
			writePage(w, page{Title: "The address could not be confirmed", Message: msg, status: http.StatusBadRequest})
			return
		}
		writePage(w, page{Title: "Address confirmed", Message: "Your e-mail address is verified. You can sign in now."})
	})
	mux.HandleFunc("GET "+mail.ResetPath, func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" {
			writePage(w, page{Title: "Choose a new password", Form: "password", Action: mail.ResetPath, Token: tok, Button: "Set the new password",
				Message: "Setting it signs the account out everywhere."})
			return
		}
		writePage(w, page{Title: "Reset your password", Form: "email", Action: mail.ResetPath, Button: "Mail me a reset link"})
	})
	mux.HandleFunc("POST "+mail.ResetPath, func(w http.ResponseWriter, r *http.Request) {
		if tok := r.PostFormValue("token"); tok != "" {
			msg, ok := runMutation(api, r, client.ResetPassword_Operation,
				map[string]any{"token": tok, "newPassword": r.PostFormValue("newPassword")})
			if !ok {
				writePage(w, page{Title: "The password was not changed", Message: msg, status: http.StatusBadRequest})
				return
			}
			writePage(w, page{Title: "Password changed", Message: "Your password is changed and every session of the account has ended. Sign in with the new password."})
			return
		}
		msg, ok := runMutation(api, r, client.RequestPasswordReset_Operation, map[string]any{"email": r.PostFormValue("email")})
		if !ok {
			writePage(w, page{Title: "Reset your password", Message: msg, status: http.StatusTooManyRequests})
			return
		}
		writePage(w, page{Title: "Check your mail", Message: "If the address has an account, a reset link is on its way. It works once, for 30 minutes."})
	})
}

func writePage(w http.ResponseWriter, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP())
	h.Set("Cache-Control", "no-store")
	p.Style = template.CSS(pageStyle)
	if p.status == 0 {
		p.status = http.StatusOK
	}
	w.WriteHeader(p.status)
	_ = pageTemplate.Execute(w, p)
}

// runMutation runs one operation through the API handler as the page's
// client (its address, for the rate limits) and returns the first error's
// message, or ok.
func runMutation(api http.Handler, r *http.Request, query string, vars map[string]any) (msg string, ok bool) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := r.Clone(r.Context())
	req.Method, req.URL.Path, req.URL.RawQuery = http.MethodPost, "/query", ""
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	req.Header = http.Header{"Content-Type": {"application/json"}}
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "User-Agent", "X-Request-Id"} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	rec := &recorder{header: http.Header{}}
	api.ServeHTTP(rec, req)
	var res struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &res); err != nil {
		return "The server could not answer; try again shortly.", false
	}
	if len(res.Errors) > 0 {
		m := strings.TrimSuffix(res.Errors[0].Message, ".")
		if m == "" {
			return "The request was refused.", false
		}
		return strings.ToUpper(m[:1]) + m[1:] + ".", false
	}
	return "", true
}

// recorder keeps a response in memory.
type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
