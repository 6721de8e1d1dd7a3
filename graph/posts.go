package graph

import (
	"context"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// editablePost reads a post inside tx for an update or delete, and checks
// that the viewer is its author or an admin. Returns errNotFound if there is
// no such post and auth.ErrForbidden if the viewer may not change it; in
// both cases nothing is written.
func (r *Resolver) editablePost(ctx context.Context, tx *ent.Client, id pulid.ID) (*ent.Post, error) {
	p, err := tx.Post.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	ok, err := r.isSelfOrAdmin(ctx, p.AuthorID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, auth.ErrForbidden
	}
	return p, nil
}
