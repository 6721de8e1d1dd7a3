package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Persisted documents (GraphQL over HTTP, Appendix A): a request may name
// its document by {"documentId": "sha256:<hex>"} instead of sending it.
// The id is the SHA-256 of the document's text as the client sends it, the
// same hash automatic persisted queries use, so an id is looked up in the
// trusted documents if there are any, else among the persisted queries.
//
// Trusted documents (Options.TrustedDocuments, APP_TRUSTED_DOCUMENTS) make
// the server an allow-list: only documents of the manifests run, named by
// id, by persisted-query hash or sent as text; anything else is refused
// before it is parsed, and a persisted query is registered only if it is
// one of them.

// documentIDPrefix is the only kind of document identifier served: the
// SHA-256 hex identifier every implementation of the appendix should
// support.
const documentIDPrefix = "sha256:"

// The codes of persisted-document refusals.
const (
	// CodeDocumentNotFound is a documentId this server does not know.
	CodeDocumentNotFound = "PERSISTED_DOCUMENT_NOT_FOUND"
	// CodeDocumentNotTrusted is a document outside the trusted documents.
	CodeDocumentNotTrusted = "DOCUMENT_NOT_TRUSTED"
)

// Documents are trusted documents by the hex SHA-256 of their text.
type Documents map[string]string

// ParseManifest reads a persisted-documents manifest: a JSON object from
// each document's hash (hex SHA-256 of its text, optionally "sha256:"
// prefixed) to its text, the form graphql-codegen's client preset writes
// (persistedDocuments with hashAlgorithm sha256) and graph/client's
// persisted-documents.json has. Every hash is checked against its text, so
// a manifest made with another algorithm, or edited by hand, is refused
// whole.
func ParseManifest(data []byte) (Documents, error) {
	var m map[string]string
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object of hash to document: %w", err)
	}
	docs := make(Documents, len(m))
	for key, text := range m {
		hash := strings.TrimPrefix(key, documentIDPrefix)
		if !isSHA256Hex(hash) {
			return nil, fmt.Errorf("%q is not a SHA-256 hash (64 lower-case hex digits)", key)
		}
		if got := documentHash(text); got != hash {
			return nil, fmt.Errorf("%q is not the SHA-256 of its document (that is %s)", key, got)
		}
		docs[hash] = text
	}
	return docs, nil
}

// documentHash is the hex SHA-256 of a document's text.
func documentHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type documentIDKey struct{}

// documentLookup resolves a request's documentId to its text and, with
// trusted documents, refuses every document that is not one of them. It
// runs first of the parameter mutators: before the persisted-query lookup
// (which it feeds in trusted mode) and before anything is measured or
// parsed.
type documentLookup struct {
	trusted Documents             // nil: every document may run
	stored  graphql.Cache[string] // the persisted queries; nil if off
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLookup{}

func (documentLookup) ExtensionName() string                   { return "PersistedDocuments" }
func (documentLookup) Validate(graphql.ExecutableSchema) error { return nil }

func (d documentLookup) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if id, ok := ctx.Value(documentIDKey{}).(string); ok {
		return d.resolve(ctx, id, p)
	}
	if d.trusted == nil {
		return nil
	}
	if p.Query == "" {
		// A persisted query by its hash alone: served from the trusted
		// documents, never from what the store may hold.
		hash := persistedQueryHash(p.Extensions)
		text, ok := d.trusted[hash]
		if !ok {
			return refuseDocument(ctx, CodeDocumentNotTrusted, "this persisted query is not one of the documents this server runs")
		}
		p.Query = text
		return nil
	}
	if _, ok := d.trusted[documentHash(p.Query)]; !ok {
		return refuseDocument(ctx, CodeDocumentNotTrusted, "this server runs only its trusted documents: send the documentId (or the exact text) of a document your client was built with")
	}
	return nil
}

// resolve sets p.Query to the document id names; a query sent along must
// be that document.
func (d documentLookup) resolve(ctx context.Context, id string, p *graphql.RawParams) *gqlerror.Error {
	hash, ok := strings.CutPrefix(id, documentIDPrefix)
	if !ok || !isSHA256Hex(hash) {
		return refuseDocument(ctx, CodeBadRequest, "documentId must be \"sha256:\" and the 64 lower-case hex digits of the document's SHA-256")
	}
	if p.Query != "" {
		if documentHash(p.Query) != hash {
			return refuseDocument(ctx, CodeBadRequest, "query is not the document documentId names")
		}
		if _, ok := d.trusted[hash]; d.trusted != nil && !ok {
			return refuseDocument(ctx, CodeDocumentNotTrusted, "this document is not one of the documents this server runs")
		}
		return nil
	}
	var text string
	ok = false
	switch {
	case d.trusted != nil:
		text, ok = d.trusted[hash]
	case d.stored != nil:
		text, ok = d.stored.Get(ctx, hash)
	}
	if !ok {
		return refuseDocument(ctx, CodeDocumentNotFound, "no document with this documentId: the client was built with documents this server does not have")
	}
	p.Query = text
	return nil
}

// persistedQueryHash is the sha256Hash of an APQ extension, "" if none.
func persistedQueryHash(ext map[string]any) string {
	pq, _ := ext["persistedQuery"].(map[string]any)
	h, _ := pq["sha256Hash"].(string)
	return h
}

// refuseDocument refuses the whole request with code's status.
func refuseDocument(ctx context.Context, code, msg string) *gqlerror.Error {
	refuseRequest(ctx, code, 0)
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
}
