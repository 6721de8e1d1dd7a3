package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/graph/store"
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
	ok, err := r.isSelfOrAdminIn(ctx, tx, p.AuthorID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, auth.ErrForbidden
	}
	return p, nil
}

// prefetchAuthors loads every author of a page at once into the user
// loader, so the page's authors cost one batch however the fields'
// goroutines are scheduled, and none of them waits for a batch window.
// Authors read with the page (Edges.Author) need no load: they hold only
// the profile columns the page's author fields read, and serve those
// fields alone (Post.author), never the loader's other readers.
func (r *Resolver) prefetchAuthors(ctx context.Context, conn *ent.PostConnection) {
	if conn == nil || len(conn.Edges) == 0 {
		return
	}
	ids := make([]pulid.ID, 0, len(conn.Edges))
	for _, e := range conn.Edges {
		if e.Node != nil && e.Node.Edges.Author == nil {
			ids = append(ids, e.Node.AuthorID)
		}
	}
	if len(ids) > 0 {
		r.loaders(ctx).PrefetchUsers(ctx, ids)
	}
}

// pageSelection reports what the post connection being resolved selects
// beyond its edges' posts' ids and titles: its totalCount, its posts'
// authors (edges { node { author } }), which of the posts' other columns
// no field reads (omit; OmitCursors when neither edges' cursors nor
// pageInfo is selected), and which of the authors' profile columns no
// field reads (authorOmit). One collection of the connection's fields
// answers all. Outside a field (no selection to read) it asks for
// everything.
func pageSelection(ctx context.Context) (total, authors bool, omit store.PostColumns, authorOmit store.ProfileColumns) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return true, false, 0, 0
	}
	oc := graphql.GetOperationContext(ctx)
	omit = store.OmitContent | store.OmitCreatedAt | store.OmitUpdatedAt | store.OmitCursors
	// role and updatedAt are never read from a profile (the role comes
	// fresh from the database; User has no updatedAt).
	authorOmit = store.OmitEmail | store.OmitName | store.OmitRole | store.OmitEmailVerified | store.OmitJoined | store.OmitProfileUpdatedAt
	for _, f := range collectFields(oc, fc.Field.Selections, postConnectionImplementors) {
		switch f.Name {
		case "totalCount":
			total = true
		case "pageInfo":
			omit &^= store.OmitCursors // its start and end cursors
		case "edges":
			edge := collectFields(oc, f.Selections, postEdgeImplementors)
			if len(fieldsNamed(oc, edge, "cursor")) > 0 {
				omit &^= store.OmitCursors
			}
			for _, node := range fieldsNamed(oc, edge, "node") {
				// As the executor collects them (fragments on Node too).
				for _, pf := range collectFields(oc, node.Selections, postImplementors) {
					switch pf.Name {
					case "author":
						authors = true
						authorOmit &^= profileRead(oc, pf.Selections)
					case "content":
						omit &^= store.OmitContent
					case "createdAt":
						omit &^= store.OmitCreatedAt
					case "updatedAt":
						omit &^= store.OmitUpdatedAt
					}
				}
			}
		}
	}
	return total, authors, omit, authorOmit
}

// profileRead is the profile columns a selection on User reads from the
// record it is given.
func profileRead(oc *graphql.OperationContext, sel ast.SelectionSet) store.ProfileColumns {
	var read store.ProfileColumns
	for _, f := range collectFields(oc, sel, userImplementors) {
		switch f.Name {
		case "id", "role", "posts", "__typename":
			// The id is always read; role and posts read the database.
		case "email":
			read |= store.OmitEmail
		case "name":
			read |= store.OmitName
		case "emailVerified":
			read |= store.OmitEmailVerified
		case "createdAt":
			read |= store.OmitJoined
		default:
			// A field added to User later: read everything.
			return ^store.ProfileColumns(0)
		}
	}
	return read
}

// prefetchUserPosts does for a page of users what prefetchAuthors does for
// a page of posts: it finds the posts(...) fields selected under
// edges.node and loads every user's page at once, so first pages of all
// the users' lists cost one windowed query. Pages asked for with cursors
// are left to the resolvers.
func (r *Resolver) prefetchUserPosts(ctx context.Context, conn *ent.UserConnection) {
	fc := graphql.GetFieldContext(ctx)
	if conn == nil || len(conn.Edges) == 0 || fc == nil {
		return
	}
	oc := graphql.GetOperationContext(ctx)
	var keys []store.PostPageKey
	for _, edges := range fieldsNamed(oc, collectFields(oc, fc.Field.Selections, userConnectionImplementors), "edges") {
		for _, node := range fieldsNamed(oc, collectFields(oc, edges.Selections, userEdgeImplementors), "node") {
			for _, posts := range fieldsNamed(oc, collectFields(oc, node.Selections, userImplementors), "posts") {
				args := posts.ArgumentMap(oc.Variables)
				if args["after"] != nil || args["before"] != nil || args["last"] != nil {
					continue
				}
				first := store.DefaultPageSize
				if n, ok := asInt(args["first"]); ok {
					first = int(n)
				}
				if store.CheckPageSize(int64(first)) != nil {
					continue // the resolver reports it
				}
				total := len(fieldsNamed(oc, collectFields(oc, posts.Selections, postConnectionImplementors), "totalCount")) > 0
				for _, e := range conn.Edges {
					if e.Node != nil {
						keys = append(keys, store.PostPage{Author: e.Node.ID, First: &first, TotalCount: total}.Key())
					}
				}
			}
		}
	}
	if len(keys) > 0 {
		r.loaders(ctx).PrefetchUserPosts(ctx, keys)
	}
}

func fieldsNamed(_ *graphql.OperationContext, fields []graphql.CollectedField, name string) []graphql.CollectedField {
	var out []graphql.CollectedField
	for _, f := range fields {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}
