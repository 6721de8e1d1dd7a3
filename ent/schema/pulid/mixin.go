package pulid

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// Mixin gives an ent schema a PULID primary key with the given prefix.
type Mixin struct {
	mixin.Schema
	prefix string
}

// MixinWithPrefix returns a Mixin whose IDs start with prefix, which must be
// two upper-case letters unique among the schemas.
func MixinWithPrefix(prefix string) Mixin {
	if len(prefix) != prefixLen {
		panic("pulid: prefix must be two letters: " + prefix)
	}
	return Mixin{prefix: prefix}
}

// Fields implements ent.Mixin.
func (m Mixin) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			GoType(ID("")).
			MaxLen(prefixLen + ulidLen).
			Immutable().
			DefaultFunc(func() ID { return New(m.prefix, time.Now()) }),
	}
}

// Annotation records a schema's prefix for the code generator, which builds
// the prefix-to-table map the Node resolver uses.
type Annotation struct {
	Prefix string
}

// Name implements schema.Annotation.
func (Annotation) Name() string { return "PULID" }

// Annotations implements ent.Mixin.
func (m Mixin) Annotations() []schema.Annotation {
	return []schema.Annotation{Annotation{Prefix: m.prefix}}
}
