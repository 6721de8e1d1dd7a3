package graph

import (
	"slices"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
)

// credentialFields are the root mutations that check or mint credentials.
// An operation may hold at most one of them: aliases would otherwise run
// hundreds in one request (a refresh or logout is two Redis commands, and
// logins are exempt from the API budget), each against a different token
// or account. A new credential mutation joins this list.
var credentialFields = [...]string{
	"register",
	"login",
	"refresh",
	"logout",
	"changePassword",
	"revokeSession",
}

// credentialRule refuses an operation whose root selects more than one
// credential field, counting aliases and fields spread from fragments. Two
// selections with the same response key are merged by GraphQL into one
// execution, so they count once.
func credentialRule(observers *core.Events, addError core.AddErrFunc) {
	observers.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) {
		if op.Operation != ast.Mutation {
			return
		}
		keys := map[string]bool{}
		seen := map[string]bool{}
		var walk func(ast.SelectionSet)
		walk = func(set ast.SelectionSet) {
			for _, sel := range set {
				switch sel := sel.(type) {
				case *ast.Field:
					if slices.Contains(credentialFields[:], sel.Name) {
						keys[sel.Alias] = true
					}
				case *ast.InlineFragment:
					walk(sel.SelectionSet)
				case *ast.FragmentSpread:
					if seen[sel.Name] {
						continue
					}
					seen[sel.Name] = true
					if f := w.Document.Fragments.ForName(sel.Name); f != nil {
						walk(f.SelectionSet)
					}
				}
			}
		}
		walk(op.SelectionSet)
		if len(keys) <= 1 {
			return
		}
		addError(
			core.Message("an operation may hold only one of %s; this one holds %d", strings.Join(credentialFields[:], ", "), len(keys)),
			core.At(op.Position),
			limitExt("credentialFields", 1),
		)
	})
}

// introspectionRule refuses __schema and __type when introspection is off,
// as a validation error. Without it the executor answers them with an
// uncoded "introspection disabled" field error, which reads as a server
// fault (INTERNAL_SERVER_ERROR). __typename stays allowed: clients need it.
func introspectionRule(observers *core.Events, addError core.AddErrFunc) {
	seen := map[*ast.Field]bool{} // a fragment's fields are walked once per spread too
	observers.OnField(func(_ *core.Walker, f *ast.Field) {
		if (f.Name == "__schema" || f.Name == "__type") && !seen[f] {
			seen[f] = true
			addError(
				core.Message("introspection is disabled on this server"),
				core.At(f.Position),
			)
		}
	})
}
