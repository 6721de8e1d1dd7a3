package graph

//go:generate go tool gqlgen generate
//go:generate go run ./internal/execpatch generated.go
//go:generate go run ./internal/printschema -o schema.graphql
