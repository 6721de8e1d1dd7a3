package graph

import (
	"encoding/json"
	"fmt"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/authql/authql/graph/store"
)

// Limits bound what one operation may ask for. Each is checked before any
// resolver runs; the defaults are safe for this schema.
type Limits struct {
	// MaxDepth is the deepest field nesting, fragments followed
	// (introspection fields are bounded by gqlparser's own rule).
	MaxDepth int
	// MaxFields bounds the number of fields once every fragment spread is
	// inlined: a few nested fragments, each spread twice, make a short
	// query that expands exponentially. Checking this first (in linear time,
	// memoised per fragment) keeps the complexity calculation, which walks
	// the expansion, bounded too.
	MaxFields int
	// MaxComplexity is the highest computed complexity: every field counts
	// one, aliases count, and a connection counts its edges once per item
	// of the page it asks for (see pricedSchema).
	MaxComplexity int
	// MaxTokens bounds the lexer tokens of a document.
	MaxTokens int
	// MaxQueryBytes bounds the length of a document's text: one token can
	// be a megabyte-long name.
	MaxQueryBytes int
}

// DefaultLimits returns limits that fit every legitimate query of this
// schema with room to spare: a full page (100) of posts with every field
// and their authors' costs 1,407, a full page of users 807.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 10, MaxFields: 2000, MaxComplexity: 2000, MaxTokens: 10_000, MaxQueryBytes: 64 << 10}
}

// validationRules returns gqlparser's rules plus ours: the abuse limits,
// one credential mutation per operation and, when introspection is off, a
// refusal of __schema and __type. Validated documents are cached by query
// text, so the rules run once per distinct query.
func (o Options) validationRules() func() *rules.Rules {
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		r.AddRule("AbuseLimits", o.Limits.rule)
		r.AddRule("OneCredentialField", credentialRule)
		if !o.Introspection {
			r.AddRule("NoIntrospection", introspectionRule)
		}
		return r
	}
}

// rule reports operations deeper or larger (fragments inlined) than the limits.
func (l Limits) rule(observers *core.Events, addError core.AddErrFunc) {
	observers.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) {
		m := measure{cap: l.MaxFields + 1}
		walk := walkWith[size](w.Document, m)
		s := walk.set(op.SelectionSet)
		if l.MaxFields > 0 && s.fields > l.MaxFields {
			addError(
				core.Message("operation has %s fields once fragments are expanded, more than the limit of %d", atLeast(s.fields, m.cap), l.MaxFields),
				core.At(op.Position),
				limitExt("fields", l.MaxFields),
			)
			return
		}
		if l.MaxDepth > 0 && s.depth > l.MaxDepth {
			addError(
				core.Message("operation has depth %d, more than the limit of %d", s.depth, l.MaxDepth),
				core.At(op.Position),
				limitExt("depth", l.MaxDepth),
			)
		}
	})
}

func atLeast(n, cap int) string {
	if n >= cap {
		return fmt.Sprintf("more than %d", cap-1)
	}
	return fmt.Sprint(n)
}

func limitExt(name string, max int) core.ErrorOption {
	return func(err *gqlerror.Error) {
		if err.Extensions == nil {
			err.Extensions = map[string]any{}
		}
		err.Extensions["limit"] = name
		err.Extensions["max"] = max
	}
}

// size is the depth and expanded field count of a selection set.
type size struct{ depth, fields int }

// measure sizes selection sets. A fragment's size is computed once and
// counted at every spread (see selections), so measuring is linear in the
// document, whatever the expansion.
type measure struct {
	cap int // field counts saturate here
}

func (m measure) enter(sel ast.Selection) bool {
	f, ok := sel.(*ast.Field)
	return !ok || !isIntrospection(f) // bounded by MaxIntrospectionDepth
}

func (m measure) leave(sel ast.Selection, sub size) size {
	f, ok := sel.(*ast.Field)
	switch {
	case !ok:
		return sub
	case isIntrospection(f):
		return size{depth: 1, fields: 1}
	}
	return size{depth: sub.depth + 1, fields: min(sub.fields+1, m.cap)}
}

func (m measure) add(sum, s size) (size, bool) {
	return size{depth: max(sum.depth, s.depth), fields: min(sum.fields+s.fields, m.cap)}, false
}

// checkPageSizes refuses page sizes out of range anywhere in the
// operation before anything runs (resolvers check again). It runs on every
// request, so it allocates nothing unless it finds one (or walks a fragment
// spread).
func checkPageSizes(op *ast.OperationDefinition, doc *ast.QueryDocument, vars map[string]any) *gqlerror.Error {
	walk := walkWith[*badPageSize](doc, pageSizes{vars})
	bad := walk.set(op.SelectionSet)
	if bad == nil {
		return nil
	}
	e := gqlerror.ErrorPathf(bad.path, "%s %v", bad.arg, store.ErrPageSize)
	e.Extensions = map[string]any{"code": CodeBadUserInput, "field": bad.arg}
	return e
}

// badPageSize is a field with a page size out of range: the argument, and
// the field's response path below the selection set walked.
type badPageSize struct {
	arg  string
	path ast.Path
}

// pageSizes finds the first field whose first or last is out of range,
// a field's own arguments before those of the fields below it.
type pageSizes struct{ vars map[string]any }

func (p pageSizes) enter(ast.Selection) bool { return true }

func (p pageSizes) leave(sel ast.Selection, below *badPageSize) *badPageSize {
	f, ok := sel.(*ast.Field)
	if !ok {
		return below
	}
	for _, a := range f.Arguments {
		if a.Name != "first" && a.Name != "last" {
			continue
		}
		v, err := a.Value.Value(p.vars)
		if n, ok := asInt(v); err == nil && ok && store.CheckPageSize(n) != nil {
			return &badPageSize{arg: a.Name, path: ast.Path{ast.PathName(f.Alias)}}
		}
	}
	if below != nil {
		// A copy: a fragment's finding is shared by its spreads.
		below = &badPageSize{arg: below.arg, path: append(ast.Path{ast.PathName(f.Alias)}, below.path...)}
	}
	return below
}

func (p pageSizes) add(first, b *badPageSize) (*badPageSize, bool) {
	if first == nil {
		first = b
	}
	return first, first != nil
}

// asInt reads an Int argument, whether it came from a literal or a
// variable.
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}
