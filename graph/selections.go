package graph

import "github.com/vektah/gqlparser/v2/ast"

// selectionVisitor says what a walk over selections computes. T is what a
// selection comes to: the size of what it selects, the field it finds,
// whether its answer may be cached. Keep T to a word or two (a pointer
// for more): it is copied at every selection, and a five-word T made the
// page-size check eight times slower.
type selectionVisitor[T any] interface {
	// enter reports whether to walk what sel selects: a field's selection
	// set, an inline fragment's, or the fragment a spread names.
	enter(sel ast.Selection) bool
	// leave is what sel comes to, given what it selects came to (the zero
	// T when enter said not to walk it).
	leave(sel ast.Selection, sub T) T
	// add adds what a selection came to to what the selections before it
	// in the same set came to. stop ends that set; a visitor that stops at
	// a value also stops when the set above adds it, so stopping ends the
	// walk.
	add(sum, v T) (_ T, stop bool)
}

// selections walks the selection sets of one document for a visitor: depth
// first, in document order, through inline fragments and fragment spreads.
// It is the one walk over selections that the limits, the validation
// rules, the response cache, prefetching and the document's weight share.
//
// Each named fragment is walked once per walk: a later spread of it comes
// to what its first walk came to. A fragment spread many times, or nested
// fragments each spread twice, cost their size to walk, not their
// expansion; a visitor that records what it meets meets each of a
// fragment's selections once. A spread of a fragment being walked (a cycle,
// which a validation rule reports) or of no fragment comes to the zero T.
//
// A walk keeps what the first few fragments it walks came to in place, so
// it allocates nothing for the documents clients send (at most a handful
// of fragments), and a map from there on.
type selections[T any, V selectionVisitor[T]] struct {
	doc  *ast.QueryDocument
	v    V
	few  [4]walkedFragment[T]
	nfew int
	more map[string]T
}

type walkedFragment[T any] struct {
	name string
	v    T
}

// walkWith returns a walk of doc's selections for v.
func walkWith[T any, V selectionVisitor[T]](doc *ast.QueryDocument, v V) selections[T, V] {
	return selections[T, V]{doc: doc, v: v}
}

// set walks set and returns what it comes to.
func (w *selections[T, V]) set(set ast.SelectionSet) T {
	var sum T
	for _, sel := range set {
		var sub T
		if w.v.enter(sel) {
			switch sel := sel.(type) {
			case *ast.Field:
				sub = w.set(sel.SelectionSet)
			case *ast.InlineFragment:
				sub = w.set(sel.SelectionSet)
			case *ast.FragmentSpread:
				sub = w.fragment(sel.Name)
			}
		}
		var stop bool
		if sum, stop = w.v.add(sum, w.v.leave(sel, sub)); stop {
			break
		}
	}
	return sum
}

// fragment walks the named fragment's selection set, the first time only.
func (w *selections[T, V]) fragment(name string) T {
	var zero T
	if v, ok := w.walked(name); ok {
		return v
	}
	f := w.doc.Fragments.ForName(name)
	if f == nil {
		return zero
	}
	w.remember(name, zero) // a cycle back to it comes to nothing
	v := w.set(f.SelectionSet)
	w.remember(name, v)
	return v
}

func (w *selections[T, V]) walked(name string) (T, bool) {
	for _, f := range w.few[:w.nfew] {
		if f.name == name {
			return f.v, true
		}
	}
	v, ok := w.more[name]
	return v, ok
}

func (w *selections[T, V]) remember(name string, v T) {
	for i := range w.few[:w.nfew] {
		if w.few[i].name == name {
			w.few[i].v = v
			return
		}
	}
	switch {
	case w.nfew < len(w.few):
		w.few[w.nfew] = walkedFragment[T]{name: name, v: v}
		w.nfew++
	case w.more == nil:
		w.more = map[string]T{name: v}
	default:
		w.more[name] = v
	}
}

// isIntrospection reports whether f is __schema or __type (__typename is
// not: clients need it, and it costs nothing).
func isIntrospection(f *ast.Field) bool {
	return f.Name == "__schema" || f.Name == "__type"
}
