//go:build ignore

// Command entc generates the ent client and the entgql helpers (Relay
// pagination, ordering, Node) from ./schema. Run it with `go generate ./...`.
package main

import (
	"log"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
)

func main() {
	ex, err := entgql.NewExtension(
		// The GraphQL schema is written by hand in graph/schema (it is the API
		// contract); entgql only generates the Go side: pagination, ordering
		// and the Node interface.
		entgql.WithWhereInputs(false),
		entgql.WithRelaySpec(true),
	)
	if err != nil {
		log.Fatalf("entgql extension: %v", err)
	}
	templates := append(entgql.AllTemplates,
		gen.MustParse(gen.NewTemplate("pulid").ParseFiles("template/pulid.tmpl")))
	cfg := &gen.Config{
		Templates: templates,
		// Modify lets the post loader read the first page of many authors'
		// lists in one windowed query; Upsert records a revocation once
		// however often it is written; Lock lets outbox workers claim rows
		// with FOR UPDATE SKIP LOCKED on PostgreSQL; ExecQuery lets the read
		// model run a statement ent's builder wrote (a page joined to its
		// authors) and scan its rows into typed values.
		Features: []gen.Feature{gen.FeatureModifier, gen.FeatureUpsert, gen.FeatureLock, gen.FeatureExecQuery},
	}
	if err := entc.Generate("./schema", cfg, entc.Extensions(ex)); err != nil {
		log.Fatalf("ent codegen: %v", err)
	}
}
