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

// SecurityEvent is one entry of a user's security trail (mySecurityEvents):
// a sign-in, a failed one, a new device, a password or two-factor change, a
// session ended, a stolen refresh token. The client is kept only coarsely:
// the address prefix (/24 for IPv4, /48 for IPv6) and the User-Agent,
// trimmed. A user keeps a bounded trail (auth.Trail prunes it).
type SecurityEvent struct {
	ent.Schema
}

// Mixin implements ent.Schema.
func (SecurityEvent) Mixin() []ent.Mixin {
	return []ent.Mixin{pulid.MixinWithPrefix(pulid.EventPrefix)}
}

// Fields implements ent.Schema.
func (SecurityEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("user_id").
			GoType(pulid.ID("")).
			MaxLen(32).
			Immutable(),
		field.Enum("kind").
			Values("SIGN_IN", "SIGN_IN_FAILED", "NEW_DEVICE", "PASSWORD_CHANGED", "PASSWORD_RESET",
				"MFA_ENABLED", "MFA_DISABLED", "RECOVERY_CODES_REGENERATED", "SESSION_REVOKED",
				"REFRESH_TOKEN_REUSED").
			Immutable(),
		field.Time("created_at").
			Default(now).
			Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		// The client's address prefix, e.g. "203.0.113.0/24"; empty if unknown.
		field.String("address").
			Default("").
			MaxLen(64).
			Immutable(),
		// The User-Agent, trimmed to 200 characters; empty if none.
		field.String("device").
			Default("").
			MaxLen(256).
			Immutable(),
	}
}

// Edges implements ent.Schema.
func (SecurityEvent) Edges() []ent.Edge {
	return []ent.Edge{
		// Deleting a user deletes their trail in the same statement.
		edge.From("user", User.Type).
			Ref("security_events").
			Field("user_id").
			Unique().
			Required().
			Immutable().
			Annotations(entsql.OnDelete(entsql.Cascade), entgql.Skip(entgql.SkipAll)),
	}
}

// Indexes implements ent.Schema. The trail is read newest first per user.
func (SecurityEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id", "created_at", "id"),
	}
}

// Annotations implements ent.Schema.
func (SecurityEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
