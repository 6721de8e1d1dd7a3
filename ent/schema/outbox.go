package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Outbox is work that must follow a committed write: a cache invalidation,
// a live event, and later mail. The row is written in the write's own
// transaction, so it exists exactly when the write does; package outbox
// delivers it (at least once, by whichever instance claims it) and deletes
// it. Rows are internal: never part of the GraphQL schema, never a Node.
type Outbox struct {
	ent.Schema
}

// Fields implements ent.Schema. The id is an auto-increment integer: rows
// are delivered roughly in the order they were written, and nothing
// outside the database ever names one.
func (Outbox) Fields() []ent.Field {
	return []ent.Field{
		// kind names the handler that delivers the row ("posts", "users", ...).
		field.String("kind").
			NotEmpty().
			MaxLen(32).
			Immutable(),
		// payload is what the handler needs, as the handler wrote it (JSON).
		field.Bytes("payload").
			Immutable(),
		field.Time("created_at").
			Default(now).
			Immutable(),
		// next_attempt_at: no instance delivers the row before then (backoff).
		field.Time("next_attempt_at").
			Default(now),
		field.Int("attempts").
			Default(0).
			NonNegative(),
		// claimed_by and claimed_until: an instance delivering the row owns
		// it until then; if it dies, another takes the row over afterwards.
		field.String("claimed_by").
			Optional().
			MaxLen(32),
		field.Time("claimed_until").
			Optional().
			Nillable(),
		// last_error is the latest failure, for operators.
		field.String("last_error").
			Optional().
			MaxLen(500),
	}
}

// Indexes implements ent.Schema: workers look for rows due by time.
func (Outbox) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("next_attempt_at"),
	}
}

// Annotations implements ent.Schema.
func (Outbox) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Annotation{Table: "outbox"},
		entgql.Skip(entgql.SkipAll),
	}
}
