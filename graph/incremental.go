package graph

import (
	"context"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
)

// Incremental delivery: an operation with @defer, sent by a client that
// prefers multipart/mixed (Apollo Client asks with
// "multipart/mixed;deferSpec=20220824, application/json;q=0.9"), is
// answered part by part: the initial payload, then the deferred fragments
// as they resolve ({"incremental": [...], "hasNext": ...}), one part of
// the multipart body each. gqlgen's transport.MultipartMixed writes them;
// multipartMixed only picks the requests and refuses, as coded JSON, a
// body that transport would log whole.

const mediaMultipartMixed = "multipart/mixed"

// wantsMultipart reports whether r asks for an incremental response: a POST
// of a JSON GraphQL request whose Accept prefers multipart/mixed. urql,
// which lists it after the JSON types, keeps getting JSON.
func wantsMultipart(r *http.Request) bool {
	return prefers(r, mediaMultipartMixed)
}

type multipartMixed struct{ transport.MultipartMixed }

var _ graphql.Transport = multipartMixed{}

func (multipartMixed) Supports(r *http.Request) bool { return wantsMultipart(r) }

func (t multipartMixed) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	r, ok := streamParams(w, r)
	if !ok {
		return
	}
	ctx := context.WithValue(r.Context(), incrementalKey{}, true)
	t.MultipartMixed.Do(w, r.WithContext(ctx), exec)
}

// incrementalKey marks a request whose transport delivers every response
// of an operation (multipart/mixed; an event stream and a socket do too).
type incrementalKey struct{}

// deliversIncrementally reports whether the request's transport sends the
// deferred parts of an operation: over plain POST or GET only the initial
// payload would be sent, with null where the deferred fields go.
func deliversIncrementally(ctx context.Context) bool {
	return ctx.Value(incrementalKey{}) != nil || isEventStream(ctx) || liveConnFrom(ctx) != nil
}

// usesDefer reports whether op defers a fragment, its fragments' included.
func usesDefer(op *ast.OperationDefinition, doc *ast.QueryDocument, text string) bool {
	if !strings.Contains(text, "defer") {
		return false // the common case, without a walk
	}
	walk := walkWith[bool](doc, deferUse{})
	return walk.set(op.SelectionSet)
}

// deferUse finds a fragment with @defer.
type deferUse struct{}

func (deferUse) enter(ast.Selection) bool { return true }

func (deferUse) leave(sel ast.Selection, below bool) bool { return below || deferred(sel) }

func (deferUse) add(sum, n bool) (bool, bool) { return sum || n, sum || n }
