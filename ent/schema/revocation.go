package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/authql/authql/ent/schema/pulid"
)

// Revocation is the durable record that a session ended (logout, revoked,
// refresh-token reuse, password change). Sessions live in Redis; this row
// outlives any loss of Redis data (a restart from an old snapshot, a
// failover to a lagging replica), so a session it names is never brought
// back: refresh checks it, and every instance reloads recent rows into its
// in-memory revocation set whenever it resyncs. Rows are pruned once no
// token of the session can exist any more.
type Revocation struct {
	ent.Schema
}

// Fields implements ent.Schema.
func (Revocation) Fields() []ent.Field {
	return []ent.Field{
		// The session id.
		field.String("id").
			MaxLen(32).
			NotEmpty().
			Immutable(),
		field.String("user_id").
			GoType(pulid.ID("")).
			MaxLen(32).
			Immutable(),
		field.Time("revoked_at").
			Immutable(),
	}
}

// Indexes implements ent.Schema.
func (Revocation) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("revoked_at"),
	}
}

// Annotations implements ent.Schema.
func (Revocation) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
