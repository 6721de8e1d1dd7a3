package graph

import (
	"encoding/json"
	"fmt"
	"strings"

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
		m := &measurer{doc: w.Document, memo: map[string]size{}, visiting: map[string]bool{}, cap: l.MaxFields + 1}
		s := m.selectionSet(op.SelectionSet)
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

// measurer computes sizes with every fragment measured once: linear in the
// document, whatever the expansion.
type measurer struct {
	doc      *ast.QueryDocument
	memo     map[string]size
	visiting map[string]bool
	cap      int // field counts saturate here
}

func (m *measurer) selectionSet(set ast.SelectionSet) size {
	var out size
	for _, sel := range set {
		var s size
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") && (sel.Name == "__schema" || sel.Name == "__type") {
				s = size{depth: 1, fields: 1} // bounded by MaxIntrospectionDepth
				break
			}
			child := m.selectionSet(sel.SelectionSet)
			s = size{depth: child.depth + 1, fields: m.add(child.fields, 1)}
		case *ast.InlineFragment:
			s = m.selectionSet(sel.SelectionSet)
		case *ast.FragmentSpread:
			s = m.fragment(sel.Name)
		}
		out.depth = max(out.depth, s.depth)
		out.fields = m.add(out.fields, s.fields)
	}
	return out
}

func (m *measurer) fragment(name string) size {
	if s, ok := m.memo[name]; ok {
		return s
	}
	f := m.doc.Fragments.ForName(name)
	if f == nil || m.visiting[name] {
		return size{} // unknown or cyclic: other rules report it
	}
	m.visiting[name] = true
	s := m.selectionSet(f.SelectionSet)
	delete(m.visiting, name)
	m.memo[name] = s
	return s
}

func (m *measurer) add(a, b int) int { return min(a+b, m.cap) }

// checkPageSizes refuses page sizes out of range anywhere in the
// operation before anything runs (resolvers check again). It runs on every
// request, so it allocates nothing unless it finds one (or walks a fragment
// spread).
func checkPageSizes(op *ast.OperationDefinition, doc *ast.QueryDocument, vars map[string]any) *gqlerror.Error {
	w := pageSizeWalker{doc: doc, vars: vars}
	f, a := w.find(op.SelectionSet)
	if f == nil {
		return nil
	}
	path, _ := fieldPath(op.SelectionSet, doc, f, nil, map[string]bool{})
	e := gqlerror.ErrorPathf(path, "%s %v", a, store.ErrPageSize)
	e.Extensions = map[string]any{"code": CodeBadUserInput, "field": a}
	return e
}

type pageSizeWalker struct {
	doc  *ast.QueryDocument
	vars map[string]any
	seen map[string]bool // fragments walked
}

// find returns the first field with a page size out of range, and which
// argument it is.
func (w *pageSizeWalker) find(set ast.SelectionSet) (*ast.Field, string) {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			for _, a := range sel.Arguments {
				if a.Name != "first" && a.Name != "last" {
					continue
				}
				v, err := a.Value.Value(w.vars)
				if n, ok := asInt(v); err == nil && ok && store.CheckPageSize(n) != nil {
					return sel, a.Name
				}
			}
			if f, a := w.find(sel.SelectionSet); f != nil {
				return f, a
			}
		case *ast.InlineFragment:
			if f, a := w.find(sel.SelectionSet); f != nil {
				return f, a
			}
		case *ast.FragmentSpread:
			if w.seen[sel.Name] {
				continue
			}
			if w.seen == nil {
				w.seen = map[string]bool{}
			}
			w.seen[sel.Name] = true
			if frag := w.doc.Fragments.ForName(sel.Name); frag != nil {
				if f, a := w.find(frag.SelectionSet); f != nil {
					return f, a
				}
			}
		}
	}
	return nil, ""
}

// fieldPath is the response path of target within set, found again only
// for an error message.
func fieldPath(set ast.SelectionSet, doc *ast.QueryDocument, target *ast.Field, above ast.Path, seen map[string]bool) (ast.Path, bool) {
	for _, sel := range set {
		var path ast.Path
		var ok bool
		switch sel := sel.(type) {
		case *ast.Field:
			here := append(above[:len(above):len(above)], ast.PathName(sel.Alias))
			if sel == target {
				return here, true
			}
			path, ok = fieldPath(sel.SelectionSet, doc, target, here, seen)
		case *ast.InlineFragment:
			path, ok = fieldPath(sel.SelectionSet, doc, target, above, seen)
		case *ast.FragmentSpread:
			if frag := doc.Fragments.ForName(sel.Name); frag != nil && !seen[sel.Name] {
				seen[sel.Name] = true
				path, ok = fieldPath(frag.SelectionSet, doc, target, above, seen)
			}
		}
		if ok {
			return path, true
		}
	}
	return nil, false
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
