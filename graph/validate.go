package graph

import (
	"net/mail"
	"strings"
	"unicode"

	"github.com/authql/authql/auth"
)

// checkEmail validates a normalised address: a bare addr-spec (no display
// name), with a dot in the domain, at most 254 bytes (RFC 5321), and no
// white space or invisible characters.
func checkEmail(email string) error {
	if email == "" || len(email) > 254 {
		return badInput("email", "must be a valid e-mail address of at most 254 characters")
	}
	// net/mail accepts any non-ASCII rune in the local part, including
	// Unicode spaces, controls and invisible format characters: those would
	// let "ann\u00a0@example.com" register next to "ann@example.com".
	if strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return badInput("email", "must be a valid e-mail address")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return badInput("email", "must be a valid e-mail address")
	}
	_, domain, _ := strings.Cut(email, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return badInput("email", "must be a valid e-mail address")
	}
	return nil
}

// checkNewPassword applies the password policy to a password being set.
func checkNewPassword(field, pw string) error {
	if err := auth.CheckPassword(pw); err != nil {
		return badInput(field, strings.TrimPrefix(err.Error(), "password "))
	}
	return nil
}

// trimText trims surrounding white space from a plain-text field (a name or
// a title); the length rules apply to what is left.
func trimText(s string) string { return strings.TrimSpace(s) }

// nonEmpty returns nil for "", so an unknown value reads as null.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
