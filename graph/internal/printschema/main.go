// Command printschema writes the executable schema, as graph.SDL prints it,
// to the file named by -o. graph/generate.go runs it after gqlgen, so the
// printed schema always matches the generated executor.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/authql/authql/graph"
)

func main() {
	out := flag.String("o", "schema.graphql", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, graph.SDL(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "printschema:", err)
		os.Exit(1)
	}
}
