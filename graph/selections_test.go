package graph

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// fieldsMet records every field a walk meets and counts them.
type fieldsMet struct{ met map[string]int }

func (fieldsMet) enter(ast.Selection) bool { return true }

func (f fieldsMet) leave(sel ast.Selection, below int) int {
	if field, ok := sel.(*ast.Field); ok {
		f.met[field.Name]++
		return below + 1
	}
	return below
}

func (fieldsMet) add(sum, n int) (int, bool) { return sum + n, false }

func mustParse(t testing.TB, q string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// A fragment is walked once however often it is spread, and counted at
// every spread: nested fragments each spread twice cost their size to walk
// and come to their expansion.
func TestSelectionsWalkEachFragmentOnce(t *testing.T) {
	// F0 spreads F1 twice, F1 spreads F2 twice, ... : 2^depth leaves.
	const depth = 20 // past the fragments kept in place, into the map
	var q strings.Builder
	q.WriteString("{ ...F0 }\n")
	for i := range depth {
		fmt.Fprintf(&q, "fragment F%d on Query { a%d: x ...F%d b%d: x ...F%d }\n", i, i, i+1, i, i+1)
	}
	fmt.Fprintf(&q, "fragment F%d on Query { leaf }\n", depth)
	doc := mustParse(t, q.String())

	met := fieldsMet{met: map[string]int{}}
	walk := walkWith[int](doc, met)
	got := walk.set(doc.Operations[0].SelectionSet)
	if want := 1<<depth + (1<<(depth+1) - 2); got != want {
		t.Errorf("came to %d fields, want the expansion's %d", got, want)
	}
	if got, want := met.met["leaf"], 1; got != want {
		t.Errorf("leaf met %d times, want %d", got, want)
	}
	if got, want := met.met["x"], 2*depth; got != want {
		t.Errorf("x met %d times, want %d (two per fragment)", got, want)
	}
}

// A cycle of fragments (which a validation rule refuses) ends the walk
// instead of looping, and an unknown fragment comes to nothing.
func TestSelectionsCycleAndUnknownFragment(t *testing.T) {
	doc := mustParse(t, `{ ...A ...Missing } fragment A on Query { a ...B } fragment B on Query { b ...A }`)
	met := fieldsMet{met: map[string]int{}}
	walk := walkWith[int](doc, met)
	if got, want := walk.set(doc.Operations[0].SelectionSet), 2; got != want {
		t.Errorf("came to %d fields, want %d", got, want)
	}
	if met.met["a"] != 1 || met.met["b"] != 1 {
		t.Errorf("met %v, want a and b once each", met.met)
	}
}

// With introspection off, each __schema or __type field is refused once,
// however many operations spread the fragment that holds it.
func TestIntrospectionRuleReportsEachFieldOnce(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	doc := mustParse(t, `query A { ...I } query B { ...I __type(name: "User") { name } } fragment I on Query { __schema { queryType { name } } }`)
	errs := validator.ValidateWithRules(schema, doc, rules.NewRules(core.Rule{Name: "NoIntrospection", RuleFunc: introspectionRule}))
	if got, want := len(errs), 2; got != want {
		t.Errorf("%d errors, want %d: %v", got, want, errs)
	}
}
