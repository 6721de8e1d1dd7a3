package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/authql/authql/ent/schema/pulid"
)

// RecoveryCode is one single-use code that completes a two-factor sign-in
// (or turns two-factor off) without the authenticator. Only a hash is
// stored; the code itself is shown once, when it is made.
type RecoveryCode struct {
	ent.Schema
}

// Fields implements ent.Schema.
func (RecoveryCode) Fields() []ent.Field {
	return []ent.Field{
		field.String("user_id").
			GoType(pulid.ID("")).
			MaxLen(32).
			Immutable(),
		// SHA-256 of the user ID and the code, hex.
		field.String("code_hash").
			MaxLen(64).
			Immutable().
			Sensitive(),
		// When the code was used; a used code is refused.
		field.Time("used_at").
			Optional().
			Nillable(),
	}
}

// Edges implements ent.Schema.
func (RecoveryCode) Edges() []ent.Edge {
	return []ent.Edge{
		// Deleting a user deletes their codes in the same statement.
		edge.From("user", User.Type).
			Ref("recovery_codes").
			Field("user_id").
			Unique().
			Required().
			Immutable().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes implements ent.Schema.
func (RecoveryCode) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id", "code_hash").Unique(),
	}
}

// Annotations implements ent.Schema.
func (RecoveryCode) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
