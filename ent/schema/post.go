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

// Post is a piece of content written by a user.
type Post struct {
	ent.Schema
}

// Mixin implements ent.Schema.
func (Post) Mixin() []ent.Mixin {
	return []ent.Mixin{pulid.MixinWithPrefix(pulid.PostPrefix), TimeMixin{}}
}

// Fields implements ent.Schema.
func (Post) Fields() []ent.Field {
	return []ent.Field{
		field.String("title").
			Validate(runeLen(1, 200)),
		field.Text("content").
			Validate(runeLen(1, 50000)),
		field.String("author_id").
			GoType(pulid.ID("")).
			Immutable(),
	}
}

// Edges implements ent.Schema.
func (Post) Edges() []ent.Edge {
	return []ent.Edge{
		// Deleting a user deletes their posts in the same statement.
		edge.From("author", User.Type).
			Ref("posts").
			Field("author_id").
			Unique().
			Required().
			Immutable().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes implements ent.Schema. Lists are read newest first by keyset
// (created_at, id), globally and per author.
func (Post) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("created_at", "id"),
		index.Fields("author_id", "created_at", "id"),
	}
}

// Annotations implements ent.Schema.
func (Post) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
