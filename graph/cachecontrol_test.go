package graph

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	gqlast "github.com/vektah/gqlparser/v2/ast"
)

// The fields whose value depends on who asks say so, and the response
// cache reads what they say.
func TestCacheControlOfViewerFields(t *testing.T) {
	s := NewExecutableSchema(Config{}).Schema()
	for _, tc := range []struct {
		typ, field string
		want       cacheNeeds
	}{
		{"Query", "me", perViewer},
		{"User", "email", perViewer | perRole},
		{"Query", "users", perViewer | perRole},
		{"Query", "mySessions", uncached},
		{"Query", "posts", 0},
		{"User", "name", 0},
	} {
		def := s.Types[tc.typ].Fields.ForName(tc.field)
		if def == nil {
			t.Fatalf("no field %s.%s", tc.typ, tc.field)
		}
		if got := fieldCacheNeeds(def); got != tc.want {
			t.Errorf("%s.%s: cache needs %03b, want %03b", tc.typ, tc.field, got, tc.want)
		}
	}
}

// A field whose resolver reads the viewer (directly or through any helper
// of this package) shows something that depends on who asks: its answer
// must not be shared between viewers, so the field carries @cacheControl
// with PRIVATE or stricter. A @hasRole field is decided by the viewer's
// role: PRIVATE_PER_ROLE or stricter. An interface field is as strict as
// the strictest of its implementations (a selection of it on the interface
// reads the interface's definition).
func TestViewerDependentFieldsAreCachedPrivately(t *testing.T) {
	s := NewExecutableSchema(Config{}).Schema()
	readers := viewerReadingResolvers(t)
	// The analysis finds what it must: a test that found nothing would
	// pass whatever the schema said.
	for _, f := range []string{"Query.me", "Query.mySessions", "User.email"} {
		if !readers[f] {
			t.Errorf("%s was not found to read the viewer: the analysis below is broken", f)
		}
	}
	for field := range readers {
		typ, name, _ := strings.Cut(field, ".")
		if typ == "Mutation" || typ == "Subscription" {
			continue // never cached
		}
		def := s.Types[typ].Fields.ForName(name)
		if def == nil {
			continue // a resolver method that is no field (Query.__type's)
		}
		if fieldCacheNeeds(def)&(perViewer|uncached) == 0 {
			t.Errorf("%s reads the viewer: give it @cacheControl(scope: PRIVATE) (or PRIVATE_PER_ROLE if it reads the viewer's role, NO_STORE if no write tracks its data)", field)
		}
	}
	for _, typ := range s.Types {
		for _, f := range typ.Fields {
			if f.Directives.ForName("hasRole") != nil && fieldCacheNeeds(f)&(perRole|uncached) == 0 {
				t.Errorf("%s.%s is @hasRole: give it @cacheControl(scope: PRIVATE_PER_ROLE)", typ.Name, f.Name)
			}
		}
		if typ.Kind != gqlast.Interface {
			continue
		}
		for _, impl := range s.PossibleTypes[typ.Name] {
			for _, f := range typ.Fields {
				if in := impl.Fields.ForName(f.Name); in != nil && fieldCacheNeeds(in)&^fieldCacheNeeds(f) != 0 {
					t.Errorf("%s.%s is cached less strictly than %s.%s", typ.Name, f.Name, impl.Name, f.Name)
				}
			}
		}
	}
}

// viewerReads are the calls that read who asks.
var viewerReads = []string{"auth.Require", "auth.FromContext", "auth.MetaFrom", "auth.WebFrom"}

// viewerReadingResolvers returns the resolver methods of this package
// ("Query.me", "User.email") that read the viewer, directly or through
// functions of this package or of the packages in localDirs. Calls are
// followed by name (to every function and method of that name), which errs
// towards finding too much. noteRoleRead, which reads the viewer only to
// tell the response cache whose role was read, is not followed.
func viewerReadingResolvers(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	calls := map[string][]string{}  // function or "Type.method" -> names called
	byName := map[string][]string{} // name -> functions and methods of that name
	reads := map[string]bool{}
	for _, dir := range localDirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") || filepath.Base(name) == "generated.go" {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil || fn.Name.Name == "noteRoleRead" {
					continue
				}
				key := fn.Name.Name
				if fn.Recv != nil {
					key = receiverType(fn.Recv.List[0].Type) + "." + key
				}
				byName[fn.Name.Name] = append(byName[fn.Name.Name], key)
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					switch fun := call.Fun.(type) {
					case *ast.Ident:
						calls[key] = append(calls[key], fun.Name)
					case *ast.SelectorExpr:
						if pkg, ok := fun.X.(*ast.Ident); ok && slices.Contains(viewerReads, pkg.Name+"."+fun.Sel.Name) {
							reads[key] = true
						}
						calls[key] = append(calls[key], fun.Sel.Name)
					}
					return true
				})
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for fn, called := range calls {
			if reads[fn] {
				continue
			}
			for _, c := range called {
				if slices.ContainsFunc(byName[c], func(k string) bool { return reads[k] }) {
					reads[fn], changed = true, true
					break
				}
			}
		}
	}
	out := map[string]bool{}
	for fn := range reads {
		typ, method, ok := strings.Cut(fn, ".")
		if !ok || !strings.HasSuffix(typ, "Resolver") || typ == "Resolver" || !unicode.IsUpper(rune(method[0])) {
			continue
		}
		typ = strings.TrimSuffix(typ, "Resolver")
		out[strings.ToUpper(typ[:1])+typ[1:]+"."+strings.ToLower(method[:1])+method[1:]] = true
	}
	return out
}

// localDirs are the directories of this package and of the packages below
// it that resolvers call into (a missing one is skipped).
var localDirs = []string{".", "store"}

func receiverType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiverType(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.IndexExpr: // a generic type
		return receiverType(e.X)
	}
	return ""
}
