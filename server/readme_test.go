package main

import (
	"os"
	"strings"
	"testing"

	"github.com/authql/authql/graph"
)

// The README's configuration table is the users' reference: every setting
// the server reads must be in it.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings() {
		if !strings.Contains(readme, "`"+s.env+"`") {
			t.Errorf("README.md does not document %s (%s)", s.env, s.usage)
		}
	}
}

// The README's error table is what clients code against: every
// extensions.code the server can send has a row, and every reason of
// UNAUTHENTICATED is named.
func TestREADMEListsEveryErrorCode(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, c := range graph.Codes() {
		if !strings.Contains(readme, "\n| `"+c+"` |") {
			t.Errorf("README.md's error table has no row for %s", c)
		}
	}
	for _, r := range graph.Reasons() {
		if !strings.Contains(readme, "`"+r+"`") {
			t.Errorf("README.md does not name the reason %s", r)
		}
	}
}
