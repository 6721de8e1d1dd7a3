package auth

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authql/authql/ent/schema/pulid"
)

// AuthDirective implements @auth: the field resolves only for an
// authenticated viewer. Otherwise it fails with the reason (no token,
// invalid, expired, revoked, or the session store unavailable).
func AuthDirective(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if _, err := Require(ctx); err != nil {
		return nil, err
	}
	return next(ctx)
}

// HasRoleDirective implements @hasRole(role): the viewer must be
// authenticated and have the role. roleOf reads a user's current role (not a
// claim in the token, so a demotion takes effect at once).
func HasRoleDirective[R comparable](roleOf func(context.Context, pulid.ID) (R, error)) func(context.Context, any, graphql.Resolver, R) (any, error) {
	return func(ctx context.Context, _ any, next graphql.Resolver, role R) (any, error) {
		v, err := Require(ctx)
		if err != nil {
			return nil, err
		}
		have, err := roleOf(ctx, v.UserID)
		if err != nil {
			return nil, err
		}
		if have != role {
			return nil, ErrForbidden
		}
		return next(ctx)
	}
}
