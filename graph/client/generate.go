// Package client is a typed Go client of the authql API. genqlient
// generates it from the operations in operations.graphql, checked against
// the printed schema ../schema.graphql; add an operation there and run
// `go generate ./graph/client`.
//
// Every operation is a function taking a graphql.Client, which carries the
// access token:
//
//	c := graphql.NewClient(url, &http.Client{Transport: bearer})
//	resp, err := client.Me(ctx, c)
//
// Errors from the server are a gqlerror.List; read extensions.code with
// errors.As(err, &e) on a *gqlerror.Error.
package client

//go:generate go tool genqlient genqlient.yaml

// persisted-documents.json: the SHA-256 of each operation's document as the
// client sends it, for a server that runs only trusted documents
// (APP_TRUSTED_DOCUMENTS).
//go:generate go run ../internal/docmanifest -o persisted-documents.json generated.go
