// Command docmanifest writes the persisted-documents manifest of the Go
// client: a JSON object from the hex SHA-256 of each operation's document,
// exactly as the client sends it (genqlient's <Name>_Operation constants),
// to that document. It is the same form graphql-codegen's client preset
// writes, so a server loads either with APP_TRUSTED_DOCUMENTS.
// graph/client/generate.go runs it after genqlient:
//
//	go run ../internal/docmanifest -o persisted-documents.json generated.go
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("o", "persisted-documents.json", "output file")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "docmanifest:", err)
		os.Exit(1)
	}
}

func run(out string, files []string) error {
	docs := map[string]string{}
	for _, f := range files {
		if err := collect(f, docs); err != nil {
			return err
		}
	}
	if len(docs) == 0 {
		return errors.New("no <Name>_Operation constants found")
	}
	// encoding/json writes map keys sorted: the file changes only when a
	// document does. Documents keep <, > and & as they are.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(docs); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// collect adds the documents of the <Name>_Operation string constants of
// a Go file to docs, keyed by their hex SHA-256.
func collect(path string, docs map[string]string) error {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasSuffix(name.Name, "_Operation") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return fmt.Errorf("%s: %s is not a string literal", path, name.Name)
				}
				text, err := strconv.Unquote(lit.Value)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", path, name.Name, err)
				}
				sum := sha256.Sum256([]byte(text))
				docs[hex.EncodeToString(sum[:])] = text
			}
		}
	}
	return nil
}
