package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/authql/authql/cache"
)

// querySizeGuard refuses a query document longer than the limit before it
// is parsed, cached or persisted: the token limit alone lets through a
// document made of a few huge names. It runs after the persisted-query
// lookup, so a document read from the store is measured too.
type querySizeGuard struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = querySizeGuard{}

func (querySizeGuard) ExtensionName() string                   { return "QuerySizeGuard" }
func (querySizeGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g querySizeGuard) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if g.max <= 0 || len(p.Query) <= g.max {
		return nil
	}
	refuseRequest(ctx, CodePayloadTooLarge, 0)
	return &gqlerror.Error{
		Message: fmt.Sprintf("query is %d bytes, more than the limit of %d", len(p.Query), g.max),
		Extensions: map[string]any{
			"code":  CodePayloadTooLarge,
			"limit": "queryBytes",
			"max":   g.max,
		},
	}
}

// queryCacheBytes bounds the parsed-query cache by the estimated memory of
// its documents: about 1,500 ordinary operations (200 bytes of text, 20
// nodes), or a handful of the largest documents the limits let through.
const queryCacheBytes = 8 << 20

// newQueryCache is the cache of parsed and validated documents, by query
// text, bounded by bytes rather than entries.
func newQueryCache() *cache.Weighted[*ast.QueryDocument] {
	return cache.NewWeighted(queryCacheBytes, docWeight)
}

// nodeBytes is what one node of a parsed document (a field, argument,
// value, directive or variable, with its position) costs on the heap once
// validated: measured at about 370 bytes on amd64 (BenchmarkDistinctLargeQueries).
const nodeBytes = 384

// docWeight estimates the memory a parsed document holds: its source text
// (which the AST's positions keep alive) and its nodes. Fragments are
// counted once, where they are defined, not once per spread.
func docWeight(query string, doc *ast.QueryDocument) int {
	if doc == nil {
		return len(query)
	}
	n := 0
	walk := walkWith[int](doc, nodeCount{})
	for _, op := range doc.Operations {
		n += 1 + len(op.VariableDefinitions) + directiveNodes(op.Directives) + walk.set(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n += 1 + directiveNodes(f.Directives) + walk.set(f.SelectionSet)
	}
	return len(query) + n*nodeBytes
}

// nodeCount counts the nodes of selection sets: each selection, its
// arguments' values and its directives. It does not follow fragment
// spreads: docWeight counts each fragment where it is defined.
type nodeCount struct{}

func (nodeCount) enter(sel ast.Selection) bool {
	_, spread := sel.(*ast.FragmentSpread)
	return !spread
}

func (nodeCount) leave(sel ast.Selection, below int) int {
	n := 1 + below
	switch sel := sel.(type) {
	case *ast.Field:
		for _, a := range sel.Arguments {
			n += valueNodes(a.Value)
		}
		n += directiveNodes(sel.Directives)
	case *ast.InlineFragment:
		n += directiveNodes(sel.Directives)
	case *ast.FragmentSpread:
		n += directiveNodes(sel.Directives)
	}
	return n
}

func (nodeCount) add(sum, n int) (int, bool) { return sum + n, false }

func valueNodes(v *ast.Value) int {
	if v == nil {
		return 0
	}
	n := 1
	for _, c := range v.Children {
		n += valueNodes(c.Value)
	}
	return n
}

func directiveNodes(ds ast.DirectiveList) int {
	n := 0
	for _, d := range ds {
		n++
		for _, a := range d.Arguments {
			n += valueNodes(a.Value)
		}
	}
	return n
}
