package graph

import (
	"context"
	"io"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authql/authql/graph/store"
)

// This file holds what the generated executor calls in place of some of
// gqlgen's functions (graph/internal/execpatch rewrites the calls after
// generation).

// marshalList marshals the elements of a list of objects, where gqlgen
// would call graphql.MarshalSliceConcurrently.
//
// gqlgen starts a goroutine per element so that fields of different
// elements waiting on a dataloader meet in one batch. But list resolvers
// here prefetch what their elements load (a page's authors, users' first
// pages of posts), so most elements never wait: for them a goroutine only
// costs its start and its stack growing through the executor's deep calls.
// So elements run in order on the calling goroutine for as long as none of
// them waits for a loader batch; once one does, the rest start concurrently,
// as gqlgen would, and their keys meet in one batch again. A request without
// loaders (a subscription event) keeps gqlgen's behaviour.
func marshalList(ctx context.Context, length int, workerLimit int64, omitPanicHandler bool, marshal func(context.Context, int) graphql.Marshaler) graphql.Array {
	l, ok := store.LoadersFrom(ctx)
	if !ok || length < 2 || workerLimit > 0 {
		return graphql.MarshalSliceConcurrently(ctx, length, workerLimit, omitPanicHandler, marshal)
	}
	ret := make(graphql.Array, length)
	for i := range length {
		waits := l.Waits()
		ret[i] = marshalElement(ctx, i, omitPanicHandler, marshal)
		if l.Waits() == waits {
			continue
		}
		var wg sync.WaitGroup
		for j := i + 1; j < length; j++ {
			wg.Go(func() { ret[j] = marshalElement(ctx, j, omitPanicHandler, marshal) })
		}
		wg.Wait()
		break
	}
	return ret
}

// marshalElement marshals element i of a list with its own field context,
// as graphql.MarshalSliceConcurrently does: a panic (unless the panic
// handler is omitted) is reported as an error and the element is null.
func marshalElement(ctx context.Context, i int, omitPanicHandler bool, marshal func(context.Context, int) graphql.Marshaler) (m graphql.Marshaler) {
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
	if !omitPanicHandler {
		defer func() {
			if r := recover(); r != nil {
				graphql.AddError(ctx, graphql.Recover(ctx, r))
				m = graphql.Null
			}
		}()
	}
	return marshal(ctx, i)
}

// newDeferredGroup is graphql.NewDeferredGroup for an object's fields,
// built only when one of them is deferred: the group gqlgen builds for
// every object computes the object's path and allocates a field set and a
// map that only @defer uses. The executor reads an empty group's Defers
// (a nil map: none) and touches nothing else.
func newDeferredGroup(ctx context.Context, fields []graphql.CollectedField) graphql.DeferredGroup {
	for _, f := range fields {
		if f.IsDeferred() {
			return graphql.NewDeferredGroup(ctx)
		}
	}
	return graphql.DeferredGroup{Context: ctx}
}

// objectJSON is an object's result: its field set, written as gqlgen's
// FieldSet.MarshalGQL writes it (the fields in selection order, the first
// of two fields with one alias only) but without the map that allocates
// for every object to find repeated aliases. The generated executor
// returns it where gqlgen returns the field set.
type objectJSON struct {
	set    *graphql.FieldSet
	fields []graphql.CollectedField
}

// maxScannedFields is the selection size up to which repeated aliases are
// found by looking back over the fields; a larger one is written by gqlgen.
const maxScannedFields = 32

func (o *objectJSON) MarshalGQL(w io.Writer) {
	if len(o.fields) > maxScannedFields || len(o.set.Values) != len(o.fields) {
		o.set.MarshalGQL(w)
		return
	}
	_, _ = io.WriteString(w, "{")
	written := false
fields:
	for i := range o.fields {
		alias := o.fields[i].Alias
		for j := range i {
			if o.fields[j].Alias == alias {
				continue fields
			}
		}
		if written {
			_, _ = io.WriteString(w, ",")
		}
		written = true
		// An alias is a GraphQL name ([_A-Za-z][_0-9A-Za-z]*, checked by
		// the parser): nothing in it needs escaping.
		_, _ = io.WriteString(w, `"`)
		_, _ = io.WriteString(w, alias)
		_, _ = io.WriteString(w, `":`)
		o.set.Values[i].MarshalGQL(w)
	}
	_, _ = io.WriteString(w, "}")
}
