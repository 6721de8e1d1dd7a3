package main

import (
	"os"
	"strings"
	"testing"

	"github.com/authql/authql/graph"
)

// readDoc returns the text of a file of the repository, by its path from
// the repository's root.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The configuration table of docs/OPERATIONS.md is the operators'
// reference: every setting the server reads must be in it.
func TestDocsListEverySetting(t *testing.T) {
	doc := readDoc(t, "docs/OPERATIONS.md")
	for _, s := range settings() {
		if !strings.Contains(doc, "`"+s.env+"`") {
			t.Errorf("docs/OPERATIONS.md does not document %s (%s)", s.env, s.usage)
		}
	}
}

// The error table of docs/API.md is what clients code against: every
// extensions.code the server can send has a row, and every reason of
// UNAUTHENTICATED is named.
func TestDocsListEveryErrorCode(t *testing.T) {
	doc := readDoc(t, "docs/API.md")
	for _, c := range graph.Codes() {
		if !strings.Contains(doc, "\n| `"+c+"` |") {
			t.Errorf("docs/API.md's error table has no row for %s", c)
		}
	}
	for _, r := range graph.Reasons() {
		if !strings.Contains(doc, "`"+r+"`") {
			t.Errorf("docs/API.md does not name the reason %s", r)
		}
	}
}
