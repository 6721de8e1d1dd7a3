package schema

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// runeLen returns a validator that accepts strings of min to max characters
// (not bytes: a 200-character title in any script fits). The graph layer maps
// its error, with the field name, to BAD_USER_INPUT.
func runeLen(min, max int) func(string) error {
	msg := fmt.Sprintf("must be %d to %d characters", min, max)
	return func(s string) error {
		if !utf8.ValidString(s) {
			return errors.New("must be valid UTF-8")
		}
		if n := utf8.RuneCountInString(s); n < min || n > max {
			return errors.New(msg)
		}
		return nil
	}
}
