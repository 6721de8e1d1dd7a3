package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// now is the default for timestamps: UTC, truncated to microseconds, because
// PostgreSQL keeps microseconds and keyset cursors compare the stored value
// with the one the cursor carries. A nanosecond in the cursor that the column
// lost would skip or repeat rows.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// TimeMixin adds created_at and updated_at.
type TimeMixin struct{ mixin.Schema }

// Fields implements ent.Mixin.
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Default(now).
			Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("updated_at").
			Default(now).
			UpdateDefault(now).
			Annotations(entgql.OrderField("UPDATED_AT")),
	}
}
