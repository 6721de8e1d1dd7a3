// Command execpatch points two calls of gqlgen's generated executor at the
// graph package's own (graph/lists.go), for what gqlgen has no option:
//
//   - graphql.MarshalSliceConcurrently → marshalList: a list's elements run
//     in order until one of them waits for a dataloader, instead of a
//     goroutine per element;
//   - graphql.NewDeferredGroup → newDeferredGroup: the @defer bookkeeping
//     (the field's path, a field set, a map) is built only for a selection
//     that defers something, not for every object of every response;
//   - an object's result, its *graphql.FieldSet, → &objectJSON{...}, which
//     writes the same JSON without a map per object.
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
)

var rewrites = []struct{ from, to string }{
	{"graphql.MarshalSliceConcurrently(", "marshalList("},
	{"graphql.NewDeferredGroup(ctx)", "newDeferredGroup(ctx, fields)"},
	{"\n\treturn out\n}\n", "\n\treturn &objectJSON{out, fields}\n}\n"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: execpatch FILE")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "execpatch:", err)
		os.Exit(1)
	}
}

func rewrite(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, r := range rewrites {
		if !bytes.Contains(src, []byte(r.from)) && !bytes.Contains(src, []byte(r.to)) {
			return fmt.Errorf("%s calls neither %s nor %s: gqlgen's generated code changed", path, r.from, r.to)
		}
		src = bytes.ReplaceAll(src, []byte(r.from), []byte(r.to))
	}
	return os.WriteFile(path, src, 0o644)
}
