package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// SentMail records a mail the outbox delivered, by the message's id: the
// outbox delivers at least once, and a delivery repeated after a success
// (its row could not be deleted, its claim ran out) finds the id here and
// sends nothing. Without SMTP (development) the row also keeps the
// rendered text, so `server mails` lists the mails with their links.
type SentMail struct {
	ent.Schema
}

// Fields implements ent.Schema.
func (SentMail) Fields() []ent.Field {
	return []ent.Field{
		// The message's id (mail.Message.ID).
		field.String("id").
			MaxLen(64).
			NotEmpty().
			Immutable(),
		field.String("template").
			MaxLen(32).
			Immutable(),
		field.String("to").
			MaxLen(254).
			Immutable(),
		field.String("subject").
			MaxLen(200).
			Immutable(),
		// text is the plain-text body, kept only when mail goes to the log
		// (no SMTP configured): it carries the links' tokens.
		field.Text("text").
			Optional().
			Sensitive().
			Immutable(),
		field.Time("sent_at").
			Immutable(),
	}
}

// Indexes implements ent.Schema.
func (SentMail) Indexes() []ent.Index {
	return []ent.Index{index.Fields("sent_at")}
}

// Annotations implements ent.Schema.
func (SentMail) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
