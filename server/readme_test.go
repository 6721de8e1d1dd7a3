package main

import (
	"os"
	"strings"
	"testing"
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
