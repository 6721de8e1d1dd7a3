package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
)

//go:embed templates
var templateFS embed.FS

// Templates returns every template name, for a caller that checks each
// renders (tests, the docs).
func Templates() []Template {
	return []Template{VerifyEmail, AccountExists, ResetPassword, PasswordChanged, NewDevice, MFAChanged}
}

// The pages the links lead to, under the public URL. A verification or
// reset link carries its token; the other mails link to the reset page
// without one, which asks for the address to send a reset link to.
const (
	VerifyPath = "/verify-email"
	ResetPath  = "/reset-password"
)

// Rendered is a message as it is sent.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	// Link is the one link the mail carries.
	Link string
}

// renderer holds the parsed templates.
type renderer struct {
	product   string
	publicURL string
	text      map[Template]*texttemplate.Template
	html      map[Template]*htmltemplate.Template
}

func newRenderer(product, publicURL string) (*renderer, error) {
	r := &renderer{product: product, publicURL: strings.TrimRight(publicURL, "/"),
		text: map[Template]*texttemplate.Template{}, html: map[Template]*htmltemplate.Template{}}
	for _, name := range Templates() {
		t, err := texttemplate.ParseFS(templateFS, "templates/"+string(name)+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s text: %w", name, err)
		}
		h, err := htmltemplate.ParseFS(templateFS, "templates/layout.html", "templates/"+string(name)+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s html: %w", name, err)
		}
		r.text[name], r.html[name] = t.Option("missingkey=zero"), h.Option("missingkey=zero")
	}
	return r, nil
}

// view is what a template sees.
type view struct {
	Product, To, Name, Link, Subject string
	Data                             map[string]string
}

// link is the page a message leads to: its token's page, or the reset
// page. No tracking parameters: the token is the only query.
func (r *renderer) link(m Message) string {
	switch {
	case m.Template == VerifyEmail && m.Token != "":
		return r.publicURL + VerifyPath + "?token=" + url.QueryEscape(m.Token)
	case m.Template == ResetPassword && m.Token != "":
		return r.publicURL + ResetPath + "?token=" + url.QueryEscape(m.Token)
	}
	return r.publicURL + ResetPath
}

// render renders m in plain text and HTML. Returns an error for a template
// it does not know.
func (r *renderer) render(m Message) (Rendered, error) {
	t, ok := r.text[m.Template]
	if !ok {
		return Rendered{}, fmt.Errorf("mail: unknown template %q", m.Template)
	}
	data := m.Data
	if data == nil {
		data = map[string]string{}
	}
	v := view{Product: r.product, To: m.To, Name: m.Name, Link: r.link(m), Data: data}
	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s subject: %w", m.Template, err)
	}
	// A header must be one line, whatever a name or an address holds.
	v.Subject = strings.Join(strings.Fields(subject.String()), " ")
	if err := t.ExecuteTemplate(&text, "body", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", m.Template, err)
	}
	if err := r.html[m.Template].ExecuteTemplate(&html, "layout", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s html: %w", m.Template, err)
	}
	greeting := "Hello,\n\n"
	if m.Name != "" {
		greeting = "Hello " + m.Name + ",\n\n"
	}
	footer := "\n\n-- \n" + r.product + " sent this mail to " + m.To + " because of an action on its account.\n"
	return Rendered{Subject: v.Subject, Text: greeting + strings.TrimSpace(text.String()) + footer,
		HTML: html.String(), Link: v.Link}, nil
}
