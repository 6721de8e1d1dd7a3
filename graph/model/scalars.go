package model

import (
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalString writes every GraphQL String as encoding/json does by
// default: <, > and & escaped (\u003c, \u003e, \u0026), as are U+2028 and
// U+2029, and invalid UTF-8 replaced. A response is JSON and never HTML,
// but a client that pastes it into a page (a server-rendered <script>
// block, say) still cannot be made to close a tag by stored content.
func MarshalString(s string) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { writeString(w, s) })
}

const hex = "0123456789abcdef"

// writeString is encoding/json's string encoder with HTML escaping, without
// its reflection and allocation: every response is mostly strings. It
// writes runs of plain characters and constant escapes straight to w
// (gqlgen's response buffer is an io.StringWriter), so it allocates nothing.
func writeString(w io.Writer, s string) {
	sw, ok := w.(io.StringWriter)
	if !ok {
		sw = stringWriter{w}
	}
	_, _ = sw.WriteString(`"`)
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			_, _ = sw.WriteString(s[start:i])
			switch b {
			case '"':
				_, _ = sw.WriteString(`\"`)
			case '\\':
				_, _ = sw.WriteString(`\\`)
			case '\n':
				_, _ = sw.WriteString(`\n`)
			case '\r':
				_, _ = sw.WriteString(`\r`)
			case '\t':
				_, _ = sw.WriteString(`\t`)
			case '\b':
				_, _ = sw.WriteString(`\b`)
			case '\f':
				_, _ = sw.WriteString(`\f`)
			default: // control characters and <, >, &
				_, _ = sw.WriteString(`\u00`)
				_, _ = sw.WriteString(hex[b>>4 : b>>4+1])
				_, _ = sw.WriteString(hex[b&0xf : b&0xf+1])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case c == utf8.RuneError && size == 1:
			esc = `\ufffd`
		case c == '\u2028':
			esc = `\u2028`
		case c == '\u2029':
			esc = `\u2029`
		default:
			i += size
			continue
		}
		_, _ = sw.WriteString(s[start:i])
		_, _ = sw.WriteString(esc)
		i += size
		start = i
	}
	_, _ = sw.WriteString(s[start:])
	_, _ = sw.WriteString(`"`)
}

// stringWriter lets a writer without WriteString take strings.
type stringWriter struct{ io.Writer }

func (w stringWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// UnmarshalString accepts only strings (no coercion of numbers or booleans).
func UnmarshalString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %T", v)
	}
	return s, nil
}
