// Package schema holds the ent schemas (User, Post, Revocation, Outbox),
// from which entc generates package ent, and the validators their fields
// share (graph words their errors for clients).
//
// It imports ent/schema/pulid only.
package schema

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// LengthError is a text value outside its length range, in characters.
// ent wraps it in its own ValidationError; the graph layer finds it with
// errors.As and words the client's message itself.
type LengthError struct{ Min, Max int }

func (e *LengthError) Error() string {
	return fmt.Sprintf("must be %d to %d characters", e.Min, e.Max)
}

// ErrNotUTF8 is a text value that is not valid UTF-8.
var ErrNotUTF8 = errors.New("must be valid UTF-8")

// runeLen returns a validator that accepts strings of min to max characters
// (not bytes: a 200-character title in any script fits).
func runeLen(min, max int) func(string) error {
	return func(s string) error {
		if !utf8.ValidString(s) {
			return ErrNotUTF8
		}
		if n := utf8.RuneCountInString(s); n < min || n > max {
			return &LengthError{Min: min, Max: max}
		}
		return nil
	}
}
