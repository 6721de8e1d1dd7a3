package main

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/authql/authql/"

// entGenerated stands, in allowedImports, for the packages entc generates
// (ent and its per-schema packages).
const entGenerated = "ent (generated)"

// allowedImports are the packages of this module each hand-written package
// may import (its doc comment says the same). Commands are not checked:
// server is the wiring and may import any package, the others (code
// generation, benchmarks) stand outside the layering. Nor are tests: they
// may import test helpers.
var allowedImports = map[string][]string{
	"auth/mail":           {entGenerated, "ent/entdb/outbox"},
	"auth/mail/mailtest":  nil,
	"auth":                {"cache/bus", "cache/memo", "cache/rdb", entGenerated, "ent/schema/pulid"},
	"cache":               {"cache/bus", "cache/memo", "cache/rdb"},
	"cache/bus":           {"cache/cost"},
	"cache/cachetest":     {"cache/rdb"},
	"cache/cost":          nil,
	"cache/memo":          nil,
	"cache/rdb":           nil,
	"ent/entdb":           {entGenerated},
	"ent/entdb/entdbtest": {entGenerated, "ent/entdb", "ent/schema/pulid"},
	"ent/entdb/outbox":    {entGenerated},
	"ent/schema":          {"ent/schema/pulid"},
	"ent/schema/pulid":    nil,
	"graph/store":         {"cache", entGenerated, "ent/schema/pulid"},
	"graph/model":         {entGenerated, "ent/schema/pulid"},
	"graph/client":        nil,
	"server/playground":   nil,
	"graph": {"auth", "cache", "cache/bus", "cache/cost", "cache/rdb", entGenerated,
		"auth/mail", "ent/entdb", "ent/entdb/outbox", "ent/schema", "ent/schema/pulid", "graph/model", "graph/store"},
}

// handWritten reports whether pkg (a path inside the module) is written by
// hand; under ent only entdb and schema are.
func handWritten(pkg string) bool {
	if pkg != "ent" && !strings.HasPrefix(pkg, "ent/") {
		return true
	}
	for _, p := range []string{"ent/entdb", "ent/schema"} {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// The packages import one another only as the package map allows, so the
// layering stays acyclic: cache and its subpackages know no entity, auth
// never imports cache, and nothing imports graph but server.
func TestPackageImports(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); dir != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, dir)
		rel = filepath.ToSlash(rel)
		if !handWritten(rel) || pkg.Name == "main" {
			return nil // generated code and commands
		}
		allowed, ok := allowedImports[rel]
		if !ok {
			t.Errorf("package %s is not in the package map (allowedImports)", rel)
			return nil
		}
		checked++
		for _, imp := range pkg.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			name := dep
			if !handWritten(dep) {
				name = entGenerated
			}
			if !slices.Contains(allowed, name) {
				t.Errorf("%s imports %s, which the package map does not allow", rel, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < len(allowedImports) {
		t.Errorf("checked %d packages, want at least %d: the walk missed some", checked, len(allowedImports))
	}
}
