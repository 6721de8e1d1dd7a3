package graph

import (
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

func TestCheckPageSizes(t *testing.T) {
	const q = `query($n: Int) {
		me { id }
		a: user(id: "x") { ...F }
		posts(first: 20) { edges { node { author { posts(last: $n) { totalCount } } } } }
	}
	fragment F on User { ... on User { mine: posts(first: $n) { totalCount } } }`
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Operations[0]
	for _, tc := range []struct {
		n    any
		path string // "" when the operation is accepted
	}{
		{int64(100), ""},
		{int64(0), ""},
		{nil, ""},
		{int64(101), "a.mine"}, // through a fragment spread and an inline fragment
		{int64(-1), "a.mine"},
	} {
		err := checkPageSizes(op, doc, map[string]any{"n": tc.n})
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("n=%v: %v, want none", tc.n, err)
		case tc.path != "" && err == nil:
			t.Errorf("n=%v: accepted, want an error at %s", tc.n, tc.path)
		case tc.path != "":
			if got := err.Path.String(); got != tc.path {
				t.Errorf("n=%v: path=%s, want %s", tc.n, got, tc.path)
			}
			if got, want := err.Extensions["code"], CodeBadUserInput; got != want {
				t.Errorf("n=%v: code=%v, want %v", tc.n, got, want)
			}
		}
	}

	// The nested field, once the fragment's is in range: its path runs
	// through every field above it.
	nested, err := parser.ParseQuery(&ast.Source{Input: `{ posts { edges { node { author { posts(last: 500) { totalCount } } } } } }`})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPageSizes(nested.Operations[0], nested, nil); err == nil || err.Path.String() != "posts.edges.node.author.posts" {
		t.Errorf("nested: %v, want an error at posts.edges.node.author.posts", err)
	}

	// Every request runs it: an accepted operation without fragment
	// spreads costs no allocation.
	plain, err := parser.ParseQuery(&ast.Source{Input: `query($n: Int) { me { id } posts(first: 20) { edges { node { author { posts(last: $n) { totalCount } } } } } }`})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"n": int64(100)}
	if n := testing.AllocsPerRun(100, func() { _ = checkPageSizes(plain.Operations[0], plain, vars) }); n != 0 {
		t.Errorf("%v allocations per accepted operation, want 0", n)
	}
	// Nor with a fragment spread and an inline fragment.
	if n := testing.AllocsPerRun(100, func() { _ = checkPageSizes(op, doc, vars) }); n != 0 {
		t.Errorf("%v allocations per accepted operation with fragments, want 0", n)
	}
}
