package graph

import (
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectFields is graphql.CollectFields, kept across requests. The
// generated executor calls it (graph/internal/execpatch) for every object
// of a response: 61 times for a page of 20 posts with their authors.
// gqlgen keeps what it collected for one request only, behind a key it
// allocates and hashes at every call and a lock: a twentieth of an
// uncached page's CPU.
//
// What a selection set collects depends on its document (fragments), the
// object's type and, through @skip, @include and @defer, on the request's
// variables. One with no directive, counting the fragments it spreads,
// depends on the document alone. Parsed documents come from the query
// cache, so an operation's selection sets are the same (by identity) in
// every request for it: the operation's own, and those of the fields
// collected from them. Those are kept. Anything else (a selection set
// with a directive, or one collected from it) is collected by gqlgen,
// per request, as before.
func collectFields(oc *graphql.OperationContext, sel ast.SelectionSet, satisfies []string) []graphql.CollectedField {
	if len(sel) == 0 || len(satisfies) == 0 || oc.Doc == nil {
		return graphql.CollectFields(oc, sel, satisfies)
	}
	k := fieldsKey{doc: oc.Doc, set: setOf(sel), satisfies: &satisfies[0], types: len(satisfies)}
	c := collected.Load()
	if v, ok := c.fields.Load(k); ok {
		return v.([]graphql.CollectedField)
	}
	fields := graphql.CollectFields(oc, sel, satisfies)
	root := oc.Operation != nil && len(oc.Operation.SelectionSet) > 0 && setOf(oc.Operation.SelectionSet) == k.set
	c.keep(k, sel, fields, root)
	return fields
}

// selectionSet names a selection set by identity: its first element's
// address and its length. Kept as a key, it keeps the set alive, so no
// other set can come to have the same address.
type selectionSet struct {
	first *ast.Selection
	n     int
}

func setOf(sel ast.SelectionSet) selectionSet { return selectionSet{&sel[0], len(sel)} }

// fieldsKey names a selection set of a document collected for an object
// type (its list of implemented types, as the executor passes it).
type fieldsKey struct {
	doc       *ast.QueryDocument
	set       selectionSet
	satisfies *string
	types     int
}

// maxCollectedSets and maxCollectedDocBytes bound what collectFields
// keeps: the working set of a real client's operations fits many times
// over. Past either bound, everything kept is dropped and collected
// again as requests come. The documents kept alive are weighed as the
// query cache weighs them, so one it evicted is held only within this.
const (
	maxCollectedSets     = 4096
	maxCollectedDocBytes = queryCacheBytes / 4
)

// collectedSets is what collectFields keeps, until it is full.
type collectedSets struct {
	fields sync.Map // fieldsKey → []graphql.CollectedField

	mu       sync.Mutex
	n        int
	stable   map[selectionSet]bool // the Selections of the fields kept
	docs     map[*ast.QueryDocument]bool
	docBytes int
}

func newCollectedSets() *collectedSets {
	return &collectedSets{stable: map[selectionSet]bool{}, docs: map[*ast.QueryDocument]bool{}}
}

// collected is the current collectedSets; a full one is replaced.
var collected = func() *atomic.Pointer[collectedSets] {
	var p atomic.Pointer[collectedSets]
	p.Store(newCollectedSets())
	return &p
}()

// keep stores the fields collected for k (the set sel) if the set recurs
// in every request for the operation (root: the operation's own; or the
// Selections of fields kept) and has no directive.
func (c *collectedSets) keep(k fieldsKey, sel ast.SelectionSet, fields []graphql.CollectedField, root bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (!root && !c.stable[k.set]) || collected.Load() != c || hasDirectives(k.doc, sel, 0) {
		return
	}
	newDoc, w := !c.docs[k.doc], 0
	if newDoc {
		w = docWeight(docSource(k.doc), k.doc)
	}
	if c.n+1+len(fields) > maxCollectedSets || c.docBytes+w > maxCollectedDocBytes {
		collected.CompareAndSwap(c, newCollectedSets())
		return
	}
	if _, loaded := c.fields.LoadOrStore(k, fields); loaded {
		return
	}
	c.n++
	for _, f := range fields {
		if len(f.Selections) > 0 && !c.stable[setOf(f.Selections)] {
			c.stable[setOf(f.Selections)] = true
			c.n++
		}
	}
	if newDoc {
		c.docs[k.doc] = true
		c.docBytes += w
	}
}

// docSource is a document's text, when the parser kept it.
func docSource(doc *ast.QueryDocument) string {
	if doc.Position != nil && doc.Position.Src != nil {
		return doc.Position.Src.Input
	}
	return ""
}

// maxFragmentDepth bounds how deep hasDirectives follows fragments within
// fragments; a validated document has no cycle, and one nested deeper is
// taken to have a directive (collected per request).
const maxFragmentDepth = 16

// hasDirectives reports whether a selection that collecting sel reads
// (its fields, and the inline fragments and fragment spreads at its
// level, followed) carries a directive.
func hasDirectives(doc *ast.QueryDocument, sel ast.SelectionSet, depth int) bool {
	if depth > maxFragmentDepth {
		return true
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if len(s.Directives) > 0 {
				return true
			}
		case *ast.InlineFragment:
			if len(s.Directives) > 0 || hasDirectives(doc, s.SelectionSet, depth+1) {
				return true
			}
		case *ast.FragmentSpread:
			f := doc.Fragments.ForName(s.Name)
			if len(s.Directives) > 0 || f == nil || hasDirectives(doc, f.SelectionSet, depth+1) {
				return true
			}
		default:
			return true
		}
	}
	return false
}
