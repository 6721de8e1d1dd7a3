package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/authql/authql/ent/schema/pulid"
)

// AccountToken is a single-use secret mailed to the owner of an account: a
// verification link or a password-reset link. Only the SHA-256 of the
// token is stored, so a copy of the database cannot be used to verify an
// address or reset a password; the token in the clear lives only in the
// mail (and its outbox row until it is sent). Rows are internal: never
// part of the GraphQL schema.
type AccountToken struct {
	ent.Schema
}

// Fields implements ent.Schema.
func (AccountToken) Fields() []ent.Field {
	return []ent.Field{
		// kind says what the token may do; one kind never stands for
		// another.
		field.Enum("kind").
			Values("VERIFY_EMAIL", "RESET_PASSWORD").
			Immutable(),
		// hash is the hex SHA-256 of the token's 32 random bytes: a token
		// that strong needs no slow hash.
		field.String("hash").
			Unique().
			MaxLen(64).
			NotEmpty().
			Sensitive().
			Immutable(),
		field.String("user_id").
			GoType(pulid.ID("")).
			MaxLen(32).
			Immutable(),
		// email is the address the token was mailed to: a verification
		// link verifies that address only, not one changed since.
		field.String("email").
			MaxLen(254).
			Immutable(),
		field.Time("created_at").
			Default(now).
			Immutable(),
		field.Time("expires_at").
			Immutable(),
		// used_at is set when the token is spent or superseded; a token
		// with it set is refused.
		field.Time("used_at").
			Optional().
			Nillable(),
	}
}

// Indexes implements ent.Schema: a reset spends every other token of the
// user and kind; expired rows are pruned by time.
func (AccountToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id", "kind"),
		index.Fields("expires_at"),
	}
}

// Annotations implements ent.Schema.
func (AccountToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
