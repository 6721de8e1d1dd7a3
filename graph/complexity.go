package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authql/authql/graph/store"
)

// pricedSchema is the executable schema with connections priced by what
// they cost: a connection field counts 1, its pageInfo and totalCount once,
// and its edges (the node and everything below) once per item of the page
// it asks for. A flat "page size × children" would also multiply pageInfo
// and totalCount, and refuse an ordinary full page.
//
// gqlgen's calculator hands a field's complexity function one sum of its
// children's, so the edges field lifts its own above edgeUnit, and the
// connection field takes the sum apart again: the quotient is paid per
// item, the remainder once. Both are priced here, from the raw arguments,
// rather than in ComplexityRoot: its functions are skipped when an argument
// does not decode (a bad cursor), and the lifted sum would then read as an
// absurd price instead of reaching the resolver's BAD_USER_INPUT.
type pricedSchema struct {
	graphql.ExecutableSchema
	connections map[string]bool // "Query.posts": fields of a connection type
	edges       map[string]bool // "PostConnection.edges"
}

// edgeUnit separates the edges' share of a connection's children from the
// rest, which is bounded by the fields of pageInfo and totalCount (far
// below it under any field limit; a larger rest would be overcharged,
// never undercharged).
const edgeUnit = 1 << 24

func newPricedSchema(es graphql.ExecutableSchema) pricedSchema {
	p := pricedSchema{ExecutableSchema: es, connections: map[string]bool{}, edges: map[string]bool{}}
	for _, def := range es.Schema().Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if t := es.Schema().Types[f.Type.Name()]; isConnection(t) {
				p.connections[def.Name+"."+f.Name] = true
				p.edges[t.Name+".edges"] = true
			}
		}
	}
	return p
}

// isConnection reports whether def is a Relay connection type.
func isConnection(def *ast.Definition) bool {
	return def != nil && def.Kind == ast.Object && strings.HasSuffix(def.Name, "Connection") &&
		def.Fields.ForName("edges") != nil && def.Fields.ForName("pageInfo") != nil
}

// Complexity implements graphql.ExecutableSchema.
func (p pricedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	key := typeName + "." + field
	switch {
	case p.edges[key]:
		perItem := 1 + child
		if perItem > maxComplexity/edgeUnit {
			return maxComplexity, true // refused, whatever the page size
		}
		return perItem * edgeUnit, true
	case p.connections[key]:
		perItem, once := child/edgeUnit, child%edgeUnit
		return saturatingAdd(1+once, saturatingMul(perItem, pageSize(args))), true
	}
	return p.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// pageSize is the number of items a connection field asks for: first, or
// last, or the default page size; at least 1. (Sizes over store.MaxPageSize are
// refused before pricing; they are not capped here, so a query that got
// past that check would still be priced in full.)
func pageSize(args map[string]any) int {
	n := int64(store.DefaultPageSize)
	if v, ok := asInt(args["first"]); ok {
		n = v
	} else if v, ok := asInt(args["last"]); ok {
		n = v
	}
	return int(min(max(n, 1), int64(maxComplexity)))
}

const maxComplexity = int(^uint(0) >> 1)

func saturatingAdd(a, b int) int {
	if a > maxComplexity-b {
		return maxComplexity
	}
	return a + b
}

func saturatingMul(a, b int) int {
	if b != 0 && a > maxComplexity/b {
		return maxComplexity
	}
	return a * b
}
