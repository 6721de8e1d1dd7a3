package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/authql/authql/ent/schema/pulid"
)

// User is an account. E-mail addresses are stored normalised (trimmed,
// lower-cased) by the caller, so the unique index is case-insensitive in
// effect on every database.
type User struct {
	ent.Schema
}

// Mixin implements ent.Schema.
func (User) Mixin() []ent.Mixin {
	return []ent.Mixin{pulid.MixinWithPrefix(pulid.UserPrefix), TimeMixin{}}
}

// Fields implements ent.Schema.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("email").
			Unique().
			NotEmpty().
			MaxLen(254),
		// The PHC-encoded argon2id hash. Sensitive keeps it out of String()
		// and logs; entgql.Skip keeps it out of every GraphQL type.
		field.String("password_hash").
			Sensitive().
			NotEmpty().
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("name").
			Validate(runeLen(1, 100)),
		// email_verified is set once the owner followed a verification
		// link mailed to the address.
		field.Bool("email_verified").
			Default(false),
		field.Enum("role").
			Values("USER", "ADMIN").
			Default("USER"),
		// Bumped whenever the credentials change or every session is
		// ended (password change, sign-out everywhere). A session records
		// the version it was started on; one started on an older version
		// is refused at refresh, whatever Redis remembers.
		field.Int64("credentials_version").
			Default(0).
			NonNegative().
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges implements ent.Schema.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("posts", Post.Type).
			Annotations(entgql.RelayConnection()),
	}
}

// Annotations implements ent.Schema.
func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
