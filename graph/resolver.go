// Package graph is the GraphQL layer: the schema (schema/*.graphqls), the
// generated executor, and resolvers that parse arguments, call auth, read
// through the read model (graph/store), write through ent, and return.
// Errors become GraphQL errors in one place, errors.go.
//
// It imports auth, cache (the response tier) and its subpackages, ent
// (with entdb and its outbox), graph/model and graph/store. Only server
// imports it.
package graph

import (
	"context"
	"log/slog"
	"math"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/outbox"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
	"github.com/authql/authql/graph/model"
	"github.com/authql/authql/graph/store"
)

// Deps are what the resolvers need.
type Deps struct {
	Ent *ent.Client
	// Dialect is the database's (dialect.SQLite or dialect.Postgres).
	Dialect   string
	Sessions  *auth.Sessions
	Passwords *auth.Passwords
	// Limiter enforces the login, sign-up and API rate limits; nil: none.
	Limiter *auth.Limiter
	// Tiers are the shared caches in front of the database.
	Tiers *cache.Tiers
	// Bus carries post events to every instance (subscriptions).
	Bus *bus.Bus
	// Outbox records, in each write's transaction, the cache invalidation
	// and event that must follow it, and delivers them (see outbox.go);
	// nil: delivered after the commit with nothing to retry a failure.
	Outbox *outbox.Outbox
	Log    *slog.Logger
	// MFA is what two-factor sign-in needs; without a Sealer it is off
	// (the TOTP mutations fail).
	MFA MFADeps
	// Trail records security events (mySecurityEvents); nil: none.
	Trail *auth.Trail
	// RequireVerifiedEmail: sign-up returns no tokens, and login is
	// refused, until the address is verified; sign-up answers alike for
	// new and existing addresses (APP_REQUIRE_VERIFIED_EMAIL).
	RequireVerifiedEmail bool
	// BeforeCommit, for tests, runs in every write of posts or users after
	// its work and its first cache invalidation, just before the commit.
	BeforeCommit func(ctx context.Context)
}

// Resolver is the resolver root and the dependency-injection point of the
// GraphQL layer.
type Resolver struct {
	client    *ent.Client
	sessions  *auth.Sessions
	passwords *auth.Passwords
	limiter   *auth.Limiter
	store     *store.Store
	events    *events
	outbox    *outbox.Outbox
	mfa       MFADeps
	trail     *auth.Trail
	// requireVerified: Deps.RequireVerifiedEmail.
	requireVerified bool
	// beforeCommit: Deps.BeforeCommit.
	beforeCommit func(ctx context.Context)
	sockets      sockets
	log          *slog.Logger
}

// NewSchema returns the executable schema with its resolvers and directives.
func NewSchema(d Deps) graphql.ExecutableSchema {
	return newResolver(d).schema()
}

func newResolver(d Deps) *Resolver {
	r := &Resolver{client: d.Ent, sessions: d.Sessions, passwords: d.Passwords, limiter: d.Limiter,
		store: store.New(d.Ent, d.Dialect, d.Tiers), events: newEvents(d.Bus, d.logger()), outbox: d.Outbox, beforeCommit: d.BeforeCommit,
		requireVerified: d.RequireVerifiedEmail,
		mfa:             d.MFA, trail: d.Trail,
		log: d.logger()}
	r.handleOutbox()
	return r
}

func (r *Resolver) schema() graphql.ExecutableSchema {
	cfg := Config{
		Resolvers: resolverRoot{
			Resolver: r,
			mutation: r.Mutation(), post: r.Post(), query: r.Query(), subscription: r.Subscription(), user: r.User(),
		},
		Directives: DirectiveRoot{
			Auth:    authDirective,
			HasRole: auth.HasRoleDirective(r.roleOf),
		},
	}
	return newPricedSchema(NewExecutableSchema(cfg))
}

// resolverRoot hands the executor the same resolvers on every call: the
// generated accessors allocate one each time a field is resolved (a feed
// resolves Post.author a hundred times).
type resolverRoot struct {
	*Resolver
	mutation     MutationResolver
	post         PostResolver
	query        QueryResolver
	subscription SubscriptionResolver
	user         UserResolver
}

func (r resolverRoot) Mutation() MutationResolver         { return r.mutation }
func (r resolverRoot) Post() PostResolver                 { return r.post }
func (r resolverRoot) Query() QueryResolver               { return r.query }
func (r resolverRoot) Subscription() SubscriptionResolver { return r.subscription }
func (r resolverRoot) User() UserResolver                 { return r.user }

// loaders returns the request's dataloaders. Operations get theirs from the
// loaders extension; anything else (a test calling a resolver directly) gets
// a fresh set, which is correct, only unbatched.
func (r *Resolver) loaders(ctx context.Context) *store.Loaders {
	if l, ok := store.LoadersFrom(ctx); ok {
		return l
	}
	return store.NewLoaders(r.store)
}

// user loads a user by ID through the request's loader; nil if none.
func (r *Resolver) user(ctx context.Context, id pulid.ID) (*ent.User, error) {
	return r.loaders(ctx).User().Load(ctx, id)
}

// viewer returns the authenticated caller's user record.
func (r *Resolver) viewer(ctx context.Context) (auth.Viewer, *ent.User, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return v, nil, err
	}
	u, err := r.loaders(ctx).UserNow(ctx, v.UserID)
	if err != nil {
		return v, nil, err
	}
	if u == nil {
		// The account is gone but a token of it is still alive.
		return v, nil, auth.ErrSessionRevoked
	}
	return v, u, nil
}

// roleOf is a user's current role, read from the database (batched per
// request), never from a cache: @hasRole and ownership checks decide on it,
// and a promotion or demotion must count at once. The response cache is
// told the answer being built depends on a role.
func (r *Resolver) roleOf(ctx context.Context, id pulid.ID) (user.Role, error) {
	noteRoleRead(ctx, id)
	role, err := r.loaders(ctx).Role().Load(ctx, id)
	if err != nil {
		return "", err
	}
	if role == "" {
		return "", auth.ErrSessionRevoked // the account is gone
	}
	return role, nil
}

// isSelfOrAdmin reports whether the viewer is owner or an admin: who may
// read a user's e-mail, and edit or delete a post.
func (r *Resolver) isSelfOrAdmin(ctx context.Context, owner pulid.ID) (bool, error) {
	return r.isSelfOrAdminIn(ctx, nil, owner)
}

// isSelfOrAdminIn is isSelfOrAdmin inside a transaction, tx: the role is
// read through it, not from the pool (a transaction never waits for a
// second connection).
func (r *Resolver) isSelfOrAdminIn(ctx context.Context, tx *ent.Client, owner pulid.ID) (bool, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return false, err
	}
	if v.UserID == owner {
		return true, nil
	}
	var role user.Role
	if tx == nil {
		role, err = r.roleOf(ctx, v.UserID)
	} else {
		role, err = roleIn(ctx, tx, v.UserID)
	}
	return role == user.RoleADMIN, err
}

// roleIn is roleOf read through tx.
func roleIn(ctx context.Context, tx *ent.Client, id pulid.ID) (user.Role, error) {
	noteRoleRead(ctx, id)
	u, err := tx.User.Query().Where(user.ID(id)).Select(user.FieldRole).Only(ctx)
	if ent.IsNotFound(err) {
		return "", auth.ErrSessionRevoked // the account is gone
	}
	if err != nil {
		return "", err
	}
	return u.Role, nil
}

// writePosts runs a write of posts in a transaction and moves the post
// cache generation on: inside the transaction (if Redis cannot be told,
// nothing is written) and again after the commit (so a read that raced the
// commit cannot have cached the old state under the new generation), then
// publishes the event fn returns. The bump after the commit and the event
// are recorded in the transaction's outbox: if Redis fails between the
// commit and them, they are delivered once it is back (outbox.go).
func (r *Resolver) writePosts(ctx context.Context, fn func(tx *ent.Client) (postEvent, error)) error {
	var f followUp
	err := withTx(ctx, r.client, func(tx *ent.Client) error {
		ev, err := fn(tx)
		if err != nil {
			return err
		}
		ev.EventID = newEventID()
		if f, err = r.record(ctx, tx, kindPosts, postsWritten{Event: ev}); err != nil {
			return err
		}
		if err := r.store.InvalidatePosts(ctx); err != nil {
			return err
		}
		r.testBeforeCommit(ctx)
		return nil
	})
	if err != nil {
		return err
	}
	r.deliver(ctx, f)
	return nil
}

// userWrite is a write of one user's record (writeUser).
type userWrite struct {
	// User names the user; it is read after Do ran, so Do may set it
	// (a sign-up creates the user).
	User *pulid.ID
	// Creates says Do creates the user: no instance can hold it in memory
	// yet, so the commit is not announced to them (usersWritten.Created).
	Creates bool
	// Do writes, inside the transaction.
	Do func(tx *ent.Client) error
	// Mails, if set, are the mails Do appends to: recorded in the same
	// transaction, sent once it committed.
	Mails *[]mail.Message
}

// writeUser is writePosts for a user's record.
func (r *Resolver) writeUser(ctx context.Context, w userWrite) error {
	var (
		f     followUp
		mails []followUp
	)
	err := withTx(ctx, r.client, func(tx *ent.Client) error {
		if err := w.Do(tx); err != nil {
			return err
		}
		id := *w.User
		var err error
		if f, err = r.record(ctx, tx, kindUsers, usersWritten{IDs: []pulid.ID{id}, Created: w.Creates}); err != nil {
			return err
		}
		if w.Mails != nil {
			if mails, err = r.recordMails(ctx, tx, *w.Mails); err != nil {
				return err
			}
		}
		if err := r.store.InvalidateUsers(ctx, id); err != nil {
			return err
		}
		r.testBeforeCommit(ctx)
		return nil
	})
	if err != nil {
		return err
	}
	r.deliver(ctx, f)
	r.deliverMails(ctx, mails)
	return nil
}

func (r *Resolver) testBeforeCommit(ctx context.Context) {
	if r.beforeCommit != nil {
		r.beforeCommit(ctx)
	}
}

// wantsField reports whether the field being resolved selects a sub-field
// (e.g. a connection's totalCount, which costs a COUNT).
func wantsField(ctx context.Context, name string) bool {
	if graphql.GetFieldContext(ctx) == nil {
		return true
	}
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// payload builds an AuthPayload from a fresh token pair. A web client gets
// the refresh token as an HttpOnly cookie instead of in the payload.
func (r *Resolver) payload(ctx context.Context, p auth.Pair, u *ent.User) *model.AuthPayload {
	refresh := p.RefreshToken
	if wc, ok := auth.WebFrom(ctx); ok {
		wc.SetRefreshToken(refresh, r.sessions.RefreshTTL())
		refresh = ""
	}
	return &model.AuthPayload{
		AccessToken:  p.AccessToken,
		RefreshToken: refresh,
		TokenType:    "Bearer",
		ExpiresIn:    max(0, int(math.Ceil(p.ExpiresAt.Sub(r.sessions.Tokens().Now()).Seconds()))),
		User:         u,
	}
}

// signedInUser reports whether the field being resolved belongs to the user
// of an AuthPayload: the account that has just registered, logged in or
// refreshed, which is the caller even though the request carried no token.
func signedInUser(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && fc.Parent != nil && fc.Parent.Object == "AuthPayload" && fc.Parent.Field.Name == "user"
}

var logoutScopes = map[model.LogoutScope]auth.Scope{
	model.LogoutScopeCurrent: auth.ScopeCurrent,
	model.LogoutScopeOthers:  auth.ScopeOthers,
	model.LogoutScopeAll:     auth.ScopeAll,
}

// beginLogin starts a password check against email (see auth.Limiter.Login):
// the client address is charged, and the check will spend the budget of
// the caller's known device or address, or of sessionID (the caller's own
// session, when it checks its own password), else the account's shared one.
func (r *Resolver) beginLogin(ctx context.Context, email, sessionID string) (*auth.LoginAttempt, error) {
	if r.limiter == nil {
		return nil, nil
	}
	c := auth.Caller{IP: auth.MetaFrom(ctx).IP, Session: sessionID}
	if wc, ok := auth.WebFrom(ctx); ok {
		c.Device = wc.DeviceToken()
	}
	return r.limiter.Login(ctx, email, c)
}

// checkPassword reports whether pw is the password of hash ("": an unknown
// account, checked against a dummy hash so it takes as long). The attempt's
// budget is looked at before hashing and charged only if pw is wrong.
func (r *Resolver) checkPassword(ctx context.Context, att *auth.LoginAttempt, hash, pw string) (bool, error) {
	switch {
	case len(pw) > 4*auth.MaxPasswordLen:
		// No account has such a password; don't hash megabytes.
		if err := att.Check(ctx); err != nil {
			return false, err
		}
		return false, att.Failed(ctx)
	case hash == "":
		return false, r.passwords.VerifyNone(ctx, pw, att)
	}
	return r.passwords.Verify(ctx, hash, pw, att)
}

// signedIn makes the client's address and browser known to the account
// that just signed in (att: its login, nil for a sign-up).
func (r *Resolver) signedIn(ctx context.Context, att *auth.LoginAttempt, email string) {
	wc, _ := auth.WebFrom(ctx)
	switch {
	case att != nil:
		att.Succeeded(ctx, wc)
	case r.limiter != nil:
		r.limiter.SignedIn(ctx, email, auth.MetaFrom(ctx).IP, wc)
	}
}

// limitRegister charges a sign-up to the client address.
func (r *Resolver) limitRegister(ctx context.Context) error {
	if r.limiter == nil {
		return nil
	}
	return r.limiter.Register(ctx, auth.MetaFrom(ctx).IP)
}

// limitRefresh charges a refresh attempt to the client address and looks
// whether the token's session has room (see auth.Limiter.Refresh).
func (r *Resolver) limitRefresh(ctx context.Context, token string) error {
	if r.limiter == nil {
		return nil
	}
	return r.limiter.Refresh(ctx, token, auth.MetaFrom(ctx).IP)
}

// refreshed charges a successful refresh to its session.
func (r *Resolver) refreshed(ctx context.Context, token string) {
	if r.limiter != nil {
		r.limiter.Refreshed(ctx, token)
	}
}
