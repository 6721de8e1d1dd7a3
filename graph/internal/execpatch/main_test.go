package main

import (
	"strings"
	"testing"
)

// field is gqlgen's code for a field: its object's Go field read by
// resolve, mw its middleware ("nil" without a directive), marshal the
// value's marshaler and typ its Go type.
func field(name, resolve, mw, typ, marshal string) string {
	return `func (ec *executionContext) _Post_` + name + `(ctx context.Context, field graphql.CollectedField, obj *ent.Post) (ret graphql.Marshaler) {
	return graphql.ResolveField(
		ctx,
		ec.OperationContext,
		field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_Post_` + name + `(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return ` + resolve + `
		},
		` + mw + `,
		func(ctx context.Context, selections ast.SelectionSet, v ` + typ + `) graphql.Marshaler {
			return ec.` + marshal + `(ctx, selections, v)
		},
		true,
		true,
	)
}
`
}

// objectTail is the rest of a generated file the other rewrites need.
const objectTail = `
	fields := graphql.CollectFields(ec.OperationContext, sel, postImplementors)
	res := graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, f)
	deferred := graphql.NewDeferredGroup(ctx)
	return out
}
`

func TestRewriteWritesPlainFieldsDirectly(t *testing.T) {
	const pulidMarshaler = "marshalNID2githubᚗcomᚋauthqlᚋauthqlᚋentᚋschemaᚋpulidᚐID"
	src := field("title", "obj.Title, nil", "nil", "string", "marshalNString2string") +
		field("id", "obj.ID, nil", "nil", "pulid.ID", pulidMarshaler) +
		field("createdAt", "obj.CreatedAt, nil", "nil", "time.Time", "marshalNTime2timeᚐTime") +
		field("author", "ec.Resolvers.Post().Author(ctx, obj)", "nil", "*ent.User", "marshalNUser2ᚖUser") +
		field("secret", "obj.Secret, nil", "func(ctx context.Context, next graphql.Resolver) graphql.Resolver { return next }", "string", "marshalNString2string") +
		objectTail
	got, err := rewrite([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	out := string(got)
	for _, want := range []string{
		"\treturn ec.marshalNString2string(ctx, field.Selections, obj.Title)\n}\n",
		"\treturn ec." + pulidMarshaler + "(ctx, field.Selections, obj.ID)\n}\n",
		"marshalList(ctx, len(v), 0, false, f)",
		"newDeferredGroup(ctx, fields)",
		"return &objectJSON{out, fields}",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rewritten code lacks %q:\n%s", want, out)
		}
	}
	// A time (zero marshals to null, an error with the field's path), a
	// resolver and a field with a directive keep gqlgen's resolution.
	if n := strings.Count(out, "return graphql.ResolveField("); n != 3 {
		t.Errorf("%d fields resolved by gqlgen, want 3 (createdAt, author, secret):\n%s", n, out)
	}
	for _, kept := range []string{field("createdAt", "obj.CreatedAt, nil", "nil", "time.Time", "marshalNTime2timeᚐTime"), field("author", "ec.Resolvers.Post().Author(ctx, obj)", "nil", "*ent.User", "marshalNUser2ᚖUser")} {
		if !strings.Contains(out, kept) {
			t.Errorf("rewritten code changed a field it must keep:\n%s", kept)
		}
	}

	again, err := rewrite(got)
	if err != nil || string(again) != out {
		t.Errorf("a second run changed the code (err %v)", err)
	}
}

func TestRewriteFailsWhenGqlgenChanged(t *testing.T) {
	if _, err := rewrite([]byte(objectTail)); err == nil {
		t.Error("no plain field: want an error")
	}
	if _, err := rewrite([]byte(field("title", "obj.Title, nil", "nil", "string", "marshalNString2string"))); err == nil {
		t.Error("no list, deferred group or object result: want an error")
	}
}
