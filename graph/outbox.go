package graph

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/outbox"
	"github.com/authql/authql/ent/schema/pulid"
)

// The outbox kinds of the GraphQL layer: what a committed write of posts
// or users must be followed by. The work is recorded in the write's own
// transaction and delivered right after the commit by the writer, or, if
// that fails (Redis gone between the commit and the bump, the instance
// dead), by any instance's outbox worker once it can (package outbox).
const (
	// kindPosts bumps the posts generation and has every instance drop
	// the responses it holds, then publishes the post event.
	kindPosts = "posts"
	// kindUsers invalidates user records and the users generation.
	kindUsers = "users"
)

// postsWritten is the payload of kindPosts.
type postsWritten struct {
	Event postEvent `json:"event"`
}

// usersWritten is the payload of kindUsers. A created user is in nobody's
// in-process cache: an existing one's change is announced to every
// instance (which waits for their acknowledgements) for their copies of
// the user and the responses they hold, a creation for the responses only.
type usersWritten struct {
	IDs     []pulid.ID `json:"ids"`
	Created bool       `json:"created"`
}

// handleOutbox registers the kinds' handlers; the server starts the
// workers. Both handlers are harmless twice: a generation bumped twice
// only costs a cache miss, and a post event carries an id its subscribers
// deduplicate by (events.dispatch).
func (r *Resolver) handleOutbox() {
	if r.outbox == nil {
		return
	}
	r.outbox.Handle(kindPosts, r.deliverPosts)
	r.outbox.Handle(kindUsers, r.deliverUsers)
	// Mail rows are written here and delivered by the mail worker the
	// server registers for mail.Kind; until one is, they wait.
	r.outbox.Accept(mail.Kind)
}

func (r *Resolver) deliverPosts(ctx context.Context, payload []byte) error {
	var w postsWritten
	if err := json.Unmarshal(payload, &w); err != nil {
		return fmt.Errorf("decode %s: %w", kindPosts, err)
	}
	if err := r.store.PostsWritten(ctx); err != nil {
		return err
	}
	return r.events.publish(ctx, w.Event)
}

func (r *Resolver) deliverUsers(ctx context.Context, payload []byte) error {
	var w usersWritten
	if err := json.Unmarshal(payload, &w); err != nil {
		return fmt.Errorf("decode %s: %w", kindUsers, err)
	}
	if w.Created {
		return r.store.UsersCreated(ctx, w.IDs...)
	}
	return r.store.UsersWritten(ctx, w.IDs...)
}

// followUp is the work a write recorded in its transaction, to deliver
// once it committed.
type followUp struct {
	row     outbox.Row
	kind    string
	payload []byte
}

// record writes the follow-up work of a write into its transaction's
// outbox.
func (r *Resolver) record(ctx context.Context, tx *ent.Client, kind string, v any) (followUp, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return followUp{}, err
	}
	f := followUp{kind: kind, payload: b}
	if r.outbox != nil {
		f.row, err = r.outbox.Add(ctx, tx, kind, b)
	}
	return f, err
}

// deliver does the follow-up work of a committed write now. Through the
// outbox a failure leaves it to the workers; without one (a schema built
// without an outbox) it is only logged.
func (r *Resolver) deliver(ctx context.Context, f followUp) {
	if r.outbox != nil {
		r.outbox.Deliver(ctx, f.row)
		return
	}
	var h func(context.Context, []byte) error
	switch f.kind {
	case kindPosts:
		h = r.deliverPosts
	case kindUsers:
		h = r.deliverUsers
	default: // mail: only an outbox has its handler
		r.log.WarnContext(ctx, "no outbox: follow-up not delivered", slog.String("kind", f.kind))
		return
	}
	if err := h(ctx, f.payload); err != nil {
		r.log.ErrorContext(ctx, "deliver after commit", slog.String("kind", f.kind), slog.Any("error", err))
	}
}

// newEventID names a post event, so a subscriber that receives it twice
// (the outbox delivers at least once) drops the second.
func newEventID() string { return rand.Text()[:16] }
