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
	// Two-factor codes: each alias would be one more guess per request.
	"verifyMfa",
	"confirmTotp",
	"disableTotp",
	"verifyEmail",
	"resendVerification",
	"requestPasswordReset",
	"resetPassword",
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
		keys := credentialKeys{}
		walk := walkWith[struct{}](w.Document, keys)
		walk.set(op.SelectionSet)
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

// credentialKeys collects the response keys of the credential fields at
// the root of an operation.
type credentialKeys map[string]bool

func (credentialKeys) enter(sel ast.Selection) bool {
	_, field := sel.(*ast.Field)
	return !field // the root only: fragments, not the fields' selections
}

func (k credentialKeys) leave(sel ast.Selection, _ struct{}) struct{} {
	if f, ok := sel.(*ast.Field); ok && slices.Contains(credentialFields[:], f.Name) {
		k[f.Alias] = true
	}
	return struct{}{}
}

func (credentialKeys) add(struct{}, struct{}) (struct{}, bool) { return struct{}{}, false }

// introspectionRule refuses __schema and __type when introspection is off,
// as a validation error. Without it the executor answers them with an
// uncoded "introspection disabled" field error, which reads as a server
// fault (INTERNAL_SERVER_ERROR). __typename stays allowed: clients need it.
func introspectionRule(observers *core.Events, addError core.AddErrFunc) {
	found := &introspectionFields{addError: addError}
	observers.OnOperation(func(w *core.Walker, op *ast.OperationDefinition) {
		walk := walkWith[struct{}](w.Document, found)
		walk.set(op.SelectionSet)
	})
}

// introspectionFields reports every __schema and __type field it meets,
// once: a fragment spread by several operations is walked for each.
type introspectionFields struct {
	addError core.AddErrFunc
	reported map[*ast.Field]bool
}

func (*introspectionFields) enter(ast.Selection) bool { return true }

func (i *introspectionFields) leave(sel ast.Selection, _ struct{}) struct{} {
	if f, ok := sel.(*ast.Field); ok && isIntrospection(f) && !i.reported[f] {
		if i.reported == nil {
			i.reported = map[*ast.Field]bool{}
		}
		i.reported[f] = true
		i.addError(core.Message("introspection is disabled on this server"), core.At(f.Position))
	}
	return struct{}{}
}

func (*introspectionFields) add(struct{}, struct{}) (struct{}, bool) { return struct{}{}, false }
