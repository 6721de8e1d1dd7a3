// Command execpatch points calls of gqlgen's generated executor at the
// graph package's own (graph/executor.go), for what gqlgen has no option:
//
//   - graphql.MarshalSliceConcurrently → marshalList: a list's elements run
//     in order until one of them waits for a dataloader, instead of a
//     goroutine per element;
//   - graphql.NewDeferredGroup → newDeferredGroup: the @defer bookkeeping
//     (the field's path, a field set, a map) is built only for a selection
//     that defers something, not for every object of every response;
//   - an object's result, its *graphql.FieldSet, → &objectJSON{...}, which
//     writes the same JSON without a map per object;
//   - graphql.CollectFields → collectFields: an operation's selection sets
//     are collected once, not once per object of every response;
//   - a field read straight off its object (no resolver, no directive) whose
//     scalar cannot marshal to null (String, Int, Boolean, ID) is written
//     directly, without graphql.ResolveField: gqlgen builds a field context,
//     a context, a closure and two boxed copies of the value for each such
//     field of each object, to call a resolver that returns obj.Field and
//     a marshaler that cannot fail. Nothing reads them: no error can arise
//     there, and the one field interceptor (tracing) skips fields without
//     a resolver.
//
// It runs after gqlgen in go generate, so generated.go stays reproducible,
// and fails when a call it rewrites is gone, so a gqlgen upgrade that
// changes them is noticed.
//
//	go run ./internal/execpatch generated.go
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
)

var rewrites = []struct{ from, to string }{
	{"graphql.MarshalSliceConcurrently(", "marshalList("},
	{"graphql.NewDeferredGroup(ctx)", "newDeferredGroup(ctx, fields)"},
	{"\n\treturn out\n}\n", "\n\treturn &objectJSON{out, fields}\n}\n"},
	{"graphql.CollectFields(ec.OperationContext, sel, ", "collectFields(ec.OperationContext, sel, "},
}

// plainField is gqlgen's code for a field read off its object, with no
// middleware (no directive) and a marshaler of a scalar that never
// marshals to null; direct is what it becomes.
var (
	plainField = regexp.MustCompile(`(?m)^(func \(ec \*executionContext\) _\w+\(ctx context\.Context, field graphql\.CollectedField, obj \S+\) \(ret graphql\.Marshaler\) \{)
	return graphql\.ResolveField\(
		ctx,
		ec\.OperationContext,
		field,
		func\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{
			return ec\.fieldContext_\w+\(ctx, field\)
		\},
		func\(ctx context\.Context\) \(any, error\) \{
			return (obj\.\w+), nil
		\},
		nil,
		func\(ctx context\.Context, selections ast\.SelectionSet, v [\w.]+\) graphql\.Marshaler \{
			return ec\.(marshalN(?:String2string|Int2int|Boolean2bool|ID2[^(]+pulidᚐID))\(ctx, selections, v\)
		\},
		true,
		true,
	\)
}
`)
	direct = []byte("$1\n\treturn ec.$3(ctx, field.Selections, $2)\n}\n")
	// directDone matches what direct writes, so a second run finds its work done.
	directDone = regexp.MustCompile(`(?m)^\treturn ec\.marshalN(?:String2string|Int2int|Boolean2bool|ID2[^(]+pulidᚐID)\(ctx, field\.Selections, obj\.\w+\)$`)
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: execpatch FILE")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err == nil {
		src, err = rewrite(src)
	}
	if err == nil {
		err = os.WriteFile(os.Args[1], src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "execpatch:", err)
		os.Exit(1)
	}
}

// rewrite applies the rewrites to src, gqlgen's generated.go.
func rewrite(src []byte) ([]byte, error) {
	for _, r := range rewrites {
		if !bytes.Contains(src, []byte(r.from)) && !bytes.Contains(src, []byte(r.to)) {
			return nil, fmt.Errorf("the generated code calls neither %s nor %s: gqlgen's generated code changed", r.from, r.to)
		}
		src = bytes.ReplaceAll(src, []byte(r.from), []byte(r.to))
	}
	if !plainField.Match(src) && !directDone.Match(src) {
		return nil, fmt.Errorf("no field is read off its object as gqlgen used to generate it: gqlgen's generated code changed")
	}
	return plainField.ReplaceAll(src, direct), nil
}
