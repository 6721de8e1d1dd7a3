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
// its reflection and allocation: every response is mostly strings.
func writeString(w io.Writer, s string) {
	buf := make([]byte, 0, len(s)+2)
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default: // control characters and <, >, &
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	buf = append(buf, '"')
	_, _ = w.Write(buf)
}

// UnmarshalString accepts only strings (no coercion of numbers or booleans).
func UnmarshalString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %T", v)
	}
	return s, nil
}
