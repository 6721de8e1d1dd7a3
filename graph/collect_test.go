package graph

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// opFor is what the executor has for a request of doc: its own operation
// context, as each request has.
func opFor(doc *ast.QueryDocument, vars map[string]any) *graphql.OperationContext {
	return &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars}
}

// names is the response keys of fields, in order.
func names(fields []graphql.CollectedField) []string {
	out := []string{}
	for _, f := range fields {
		out = append(out, f.Alias)
	}
	return out
}

// An operation without directives is collected once: every request for
// it, at every level, gets what the first collected, and that is what
// gqlgen collects.
func TestCollectFieldsKeepsAPlainOperation(t *testing.T) {
	doc := mustParse(t, `{ posts { edges { node { id title ...A } } } } fragment A on Post { author { name } }`)
	types := [][]string{queryImplementors, postConnectionImplementors, postEdgeImplementors, postImplementors}
	var first [][]graphql.CollectedField
	for req := range 3 {
		oc := opFor(doc, nil)
		sel := oc.Operation.SelectionSet
		for level, satisfies := range types {
			got := collectFields(oc, sel, satisfies)
			if want := graphql.CollectFields(opFor(doc, nil), sel, satisfies); !reflect.DeepEqual(got, want) {
				t.Fatalf("request %d, level %d: collected %v, gqlgen %v", req, level, names(got), names(want))
			}
			if req == 0 {
				first = append(first, got)
			} else if &got[0] != &first[level][0] {
				t.Errorf("request %d, level %d: collected again, want the fields kept", req, level)
			}
			sel = got[0].Selections
		}
	}
	if got, want := names(first[3]), []string{"id", "title", "author"}; !reflect.DeepEqual(got, want) {
		t.Errorf("a post collects %v, want %v", got, want)
	}
}

// A selection with @skip, @include or @defer, directly or in a fragment it
// spreads, is collected for each request's variables; so is everything
// below it. Selections above it are kept.
func TestCollectFieldsFollowsEachRequestsVariables(t *testing.T) {
	doc := mustParse(t, `query($full: Boolean!) {
		posts { edges { node { id ...P author { id name @include(if: $full) } } } }
	} fragment P on Post { content @include(if: $full) title @skip(if: $full) }`)
	for _, full := range []bool{true, false, false, true, true, false} {
		oc := opFor(doc, map[string]any{"full": full})
		conn := collectFields(oc, oc.Operation.SelectionSet, queryImplementors)[0]
		edges := collectFields(oc, conn.Selections, postConnectionImplementors)[0]
		node := collectFields(oc, edges.Selections, postEdgeImplementors)[0]
		post := collectFields(oc, node.Selections, postImplementors)
		author := collectFields(oc, post[len(post)-1].Selections, userImplementors)
		wantPost, wantAuthor := []string{"id", "title", "author"}, []string{"id"}
		if full {
			wantPost, wantAuthor = []string{"id", "content", "author"}, []string{"id", "name"}
		}
		if got := names(post); !reflect.DeepEqual(got, wantPost) {
			t.Errorf("full=%v: a post collects %v, want %v", full, got, wantPost)
		}
		if got := names(author); !reflect.DeepEqual(got, wantAuthor) {
			t.Errorf("full=%v: an author collects %v, want %v", full, got, wantAuthor)
		}
	}
}

// Selection sets are told apart by identity, not by what they start
// with: a fragment spread in two places, merged there with different
// fields, collects what each place merges.
func TestCollectFieldsTellsMergedSelectionsApart(t *testing.T) {
	doc := mustParse(t, `{ a: posts { ...F edges { cursor } } b: posts { ...F edges { node { id } } } }
		fragment F on PostConnection { edges { node { title } } }`)
	for range 2 {
		oc := opFor(doc, nil)
		root := collectFields(oc, oc.Operation.SelectionSet, queryImplementors)
		a := collectFields(oc, collectFields(oc, root[0].Selections, postConnectionImplementors)[0].Selections, postEdgeImplementors)
		b := collectFields(oc, collectFields(oc, root[1].Selections, postConnectionImplementors)[0].Selections, postEdgeImplementors)
		if got, want := names(a), []string{"node", "cursor"}; !reflect.DeepEqual(got, want) {
			t.Errorf("a's edges collect %v, want %v", got, want)
		}
		if got, want := names(b), []string{"node"}; !reflect.DeepEqual(got, want) || len(b[0].Selections) != 2 {
			t.Errorf("b's edges collect %v with %d node selections, want %v with 2", got, len(b[0].Selections), want)
		}
	}
}

// What is kept stays within its bounds however many operations come: past
// them, a new generation starts and the old one (and the documents it
// held) can be collected.
func TestCollectFieldsStaysBounded(t *testing.T) {
	start := collected.Load()
	for i := range maxCollectedSets + 10 {
		doc := mustParse(t, fmt.Sprintf(`{ a%d: posts { totalCount } }`, i))
		oc := opFor(doc, nil)
		root := collectFields(oc, oc.Operation.SelectionSet, queryImplementors)
		collectFields(oc, root[0].Selections, postConnectionImplementors)
		c := collected.Load()
		c.mu.Lock()
		n, bytes := c.n, c.docBytes
		c.mu.Unlock()
		if n > maxCollectedSets || bytes > maxCollectedDocBytes {
			t.Fatalf("after %d operations: %d sets and %d document bytes kept, bounds %d and %d", i+1, n, bytes, maxCollectedSets, maxCollectedDocBytes)
		}
	}
	if collected.Load() == start {
		t.Error("no new generation started past the bound")
	}
}
