package graph

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// graph/schema.graphql is what client codegen reads: it must be exactly what
// the server executes.
func TestSchemaFileIsCurrent(t *testing.T) {
	got, err := os.ReadFile("schema.graphql")
	if err != nil {
		t.Fatalf("read the printed schema: %v (run `go generate ./...`)", err)
	}
	want := SDL()
	if bytes.Equal(got, want) {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		g, w := lineAt(gotLines, i), lineAt(wantLines, i)
		if g != w {
			t.Fatalf("graph/schema.graphql is out of date with graph/schema/*.graphqls: run `go generate ./...` and commit the result.\n"+
				"first difference, line %d:\n  committed: %q\n  executable schema prints: %q", i+1, g, w)
		}
	}
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of file>"
}

// Every name a client sees carries a description: the playground's docs pane
// and the code generated from graph/schema.graphql are the API's manual.
func TestSchemaIsDescribed(t *testing.T) {
	s := NewExecutableSchema(Config{}).Schema()
	var missing []string
	need := func(desc, what string) {
		if strings.TrimSpace(desc) == "" {
			missing = append(missing, what)
		}
	}
	args := func(list ast.ArgumentDefinitionList, owner string) {
		for _, a := range list {
			need(a.Description, "argument "+owner+"("+a.Name+":)")
		}
	}
	for _, d := range s.Directives {
		if builtin(d.Position) {
			continue
		}
		need(d.Description, "directive @"+d.Name)
		args(d.Arguments, "@"+d.Name)
	}
	for _, def := range s.Types {
		if def.BuiltIn || strings.HasPrefix(def.Name, "__") {
			continue
		}
		need(def.Description, strings.ToLower(string(def.Kind))+" "+def.Name)
		for _, f := range def.Fields {
			if builtin(f.Position) || strings.HasPrefix(f.Name, "__") {
				continue // __typename, __schema, __type
			}
			kind := "field"
			if def.Kind == ast.InputObject {
				kind = "input field"
			}
			need(f.Description, kind+" "+def.Name+"."+f.Name)
			args(f.Arguments, def.Name+"."+f.Name)
		}
		for _, v := range def.EnumValues {
			need(v.Description, "enum value "+def.Name+"."+v.Name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("add a description (a \"string\" before it) in graph/schema/*.graphqls to:\n  %s", strings.Join(missing, "\n  "))
	}
}

func builtin(p *ast.Position) bool { return p != nil && p.Src != nil && p.Src.BuiltIn }
