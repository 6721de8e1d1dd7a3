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
		// The TOTP secret (RFC 6238), sealed with AES-GCM under a key
		// derived from APP_ENCRYPTION_KEY and bound to the user's ID (see
		// auth.Sealer): the column alone never gives the secret away. Set
		// by enrollTotp; it takes effect once totp_enabled is set.
		field.String("totp_secret").
			Optional().
			Nillable().
			Sensitive().
			Annotations(entgql.Skip(entgql.SkipAll)),
		// Two-factor sign-in is on: login asks for a code (verifyMfa).
		field.Bool("totp_enabled").
			Default(false).
			Annotations(entgql.Skip(entgql.SkipAll)),
		// The last TOTP time step (30-second window) a code was accepted
		// for: a code of that step or an earlier one is refused, so a code
		// seen once cannot be replayed inside its window.
		field.Int64("totp_last_step").
			Default(0).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Edges implements ent.Schema.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("posts", Post.Type).
			Annotations(entgql.RelayConnection()),
		edge.To("recovery_codes", RecoveryCode.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
		edge.To("security_events", SecurityEvent.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

// Annotations implements ent.Schema.
func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
