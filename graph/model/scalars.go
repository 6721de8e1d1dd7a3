package model

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalString writes every GraphQL String as encoding/json does: with <, >
// and & escaped (\u003c, \u003e, \u0026) and invalid UTF-8 replaced. A
// response is JSON and never HTML, but a client that pastes it into a page
// (a server-rendered <script> block, say) still cannot be made to close a
// tag by stored content.
func MarshalString(s string) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		b, _ := json.Marshal(s) // a string always marshals
		_, _ = w.Write(b)
	})
}

// UnmarshalString accepts only strings (no coercion of numbers or booleans).
func UnmarshalString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %T", v)
	}
	return s, nil
}
