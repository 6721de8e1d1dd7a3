package graph

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/accounttoken"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// The account lifecycle: e-mail verification and password reset. Each
// flow writes its change, its single-use token (hashed) and its mail in one
// transaction; the mail goes through the outbox (mail.Kind), so it exists
// exactly when the change committed and survives a crash before it is sent.

// errBadAccountToken refuses a token that is unknown, of another kind,
// expired or spent: one answer for all, so a caller learns nothing more.
var errBadAccountToken = badInput("token", "is unknown, expired or already used")

// errAccountExists: a sign-up's address has an account. Where sign-up
// must not tell so it never reaches the client; else it is the field's
// error.
var errAccountExists = badInput("email", "is already registered")

// accountNow is the time account tokens are stamped and compared with:
// UTC to the microsecond, as both databases store it (SQLite compares the
// stored text, which orders right only in one zone).
func (r *Resolver) accountNow() time.Time {
	return r.sessions.Tokens().Now().UTC().Truncate(time.Microsecond)
}

// PruneAccountTokens deletes the account tokens past their expiry at now,
// spent or not: spendToken refuses an expired token as it refuses an
// unknown one, so none of them can be used and their rows only grow the
// table. It returns how many it deleted.
func PruneAccountTokens(ctx context.Context, client *ent.Client, now time.Time) (int, error) {
	return client.AccountToken.Delete().Where(accounttoken.ExpiresAtLT(now.UTC().Truncate(time.Microsecond))).Exec(ctx)
}

// issueToken stores a new token of kind for u (its hash) and returns it
// with the time it expires.
func issueToken(ctx context.Context, tx *ent.Client, kind accounttoken.Kind, u *ent.User, ttl time.Duration, now time.Time) (string, time.Time, error) {
	token, hash := auth.NewAccountToken()
	expires := now.Add(ttl)
	err := tx.AccountToken.Create().SetKind(kind).SetHash(hash).SetUserID(u.ID).SetEmail(u.Email).
		SetCreatedAt(now).SetExpiresAt(expires).Exec(ctx)
	return token, expires, err
}

// spendToken marks a live token of kind used and returns it. The update is
// conditional (not used, not expired), so of two requests racing with one
// token exactly one gets it. Returns errBadAccountToken otherwise.
func spendToken(ctx context.Context, tx *ent.Client, kind accounttoken.Kind, token string, now time.Time) (*ent.AccountToken, error) {
	if token == "" || len(token) > 100 {
		return nil, errBadAccountToken
	}
	hash := auth.HashAccountToken(token)
	n, err := tx.AccountToken.Update().
		Where(accounttoken.Hash(hash), accounttoken.KindEQ(kind), accounttoken.UsedAtIsNil(), accounttoken.ExpiresAtGT(now)).
		SetUsedAt(now).Save(ctx)
	if err != nil {
		return nil, err
	}
	if n != 1 {
		return nil, errBadAccountToken
	}
	return tx.AccountToken.Query().Where(accounttoken.Hash(hash)).Only(ctx)
}

// recordMails writes msgs into tx's outbox.
func (r *Resolver) recordMails(ctx context.Context, tx *ent.Client, msgs []mail.Message) ([]followUp, error) {
	var fs []followUp
	for _, m := range msgs {
		f, err := r.record(ctx, tx, mail.Kind, m)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// deliverMails sends committed mails in the background: a slow mail server
// never holds up the answer (nor makes its time tell anything), and what
// fails here is retried by the outbox's workers.
func (r *Resolver) deliverMails(ctx context.Context, fs []followUp) {
	if len(fs) == 0 {
		return
	}
	ctx = rdb.WithoutBudget(context.WithoutCancel(ctx))
	go func() {
		for _, f := range fs {
			r.deliver(ctx, f)
		}
	}()
}

// writeMails runs fn in a transaction and records the mails it returns in
// the same transaction; they are sent once it committed.
func (r *Resolver) writeMails(ctx context.Context, fn func(tx *ent.Client) ([]mail.Message, error)) error {
	var fs []followUp
	err := withTx(ctx, r.client, func(tx *ent.Client) error {
		msgs, err := fn(tx)
		if err != nil {
			return err
		}
		fs, err = r.recordMails(ctx, tx, msgs)
		return err
	})
	if err != nil {
		return err
	}
	r.deliverMails(ctx, fs)
	return nil
}

// verificationMail is the mail of a new verification token for u.
func verificationMail(u *ent.User, token string, expires time.Time) mail.Message {
	return mail.Message{ID: mail.NewID(), To: u.Email, Name: u.Name, Template: mail.VerifyEmail, Token: token, Expires: expires}
}

// createUser creates an account with a verification token, and appends
// its verification mail to mails. Returns BAD_USER_INPUT for an address
// that has an account.
func (r *Resolver) createUser(ctx context.Context, tx *ent.Client, email, name, hash string, mails *[]mail.Message) (*ent.User, error) {
	u, err := tx.User.Create().SetEmail(email).SetName(name).SetPasswordHash(hash).Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, errAccountExists
	}
	if err != nil {
		return nil, err
	}
	token, expires, err := issueToken(ctx, tx, accounttoken.KindVERIFY_EMAIL, u, auth.VerifyEmailTTL, r.accountNow())
	if err != nil {
		return nil, err
	}
	*mails = append(*mails, verificationMail(u, token, expires))
	return u, nil
}

// signUpUnverified is a sign-up where addresses must be verified first,
// after its answer: it creates the account and mails its link, or, if
// the address has an account, mails its owner that someone tried.
func (r *Resolver) signUpUnverified(ctx context.Context, email, name, hash string) error {
	var (
		id    pulid.ID
		mails []mail.Message
	)
	err := r.writeUser(ctx, userWrite{User: &id, Creates: true, Mails: &mails, Do: func(tx *ent.Client) error {
		u, err := r.createUser(ctx, tx, email, name, hash, &mails)
		if err == nil {
			id = u.ID
		}
		return err
	}})
	if !errors.Is(err, errAccountExists) {
		return err
	}
	return r.writeMails(ctx, func(tx *ent.Client) ([]mail.Message, error) {
		u, err := tx.User.Query().Where(user.Email(email)).Only(ctx)
		if err != nil {
			return nil, err
		}
		return []mail.Message{{ID: mail.NewID(), To: u.Email, Name: u.Name, Template: mail.AccountExists}}, nil
	})
}

// limitMail charges a request that mails email to the client address and
// to the address asked about (known or not: the refusal tells nothing).
func (r *Resolver) limitMail(ctx context.Context, email string) error {
	if r.limiter == nil {
		return nil
	}
	return r.limiter.Mail(ctx, auth.NormalizeEmail(email), auth.MetaFrom(ctx).IP)
}

// detached runs work after the answer, whatever the client does: the
// flows that must answer alike for known and unknown addresses do their
// lookups and writes here, so their time tells nothing either.
func (r *Resolver) detached(ctx context.Context, what string, work func(ctx context.Context) error) {
	ctx = rdb.WithoutBudget(context.WithoutCancel(ctx))
	go func() {
		if err := work(ctx); err != nil {
			r.log.ErrorContext(ctx, what, slog.Any("error", err))
		}
	}()
}

// resendVerification mails a new verification link to email's account if
// it has one that is not verified.
func (r *Resolver) resendVerification(ctx context.Context, email string) error {
	u, err := r.client.User.Query().Where(user.Email(email)).Only(ctx)
	if ent.IsNotFound(err) || (err == nil && u.EmailVerified) {
		return nil
	}
	if err != nil {
		return err
	}
	now := r.accountNow()
	return r.writeMails(ctx, func(tx *ent.Client) ([]mail.Message, error) {
		token, expires, err := issueToken(ctx, tx, accounttoken.KindVERIFY_EMAIL, u, auth.VerifyEmailTTL, now)
		if err != nil {
			return nil, err
		}
		return []mail.Message{verificationMail(u, token, expires)}, nil
	})
}

// requestReset mails a password-reset link to email's account, if any.
func (r *Resolver) requestReset(ctx context.Context, email string) error {
	u, err := r.client.User.Query().Where(user.Email(email)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	now := r.accountNow()
	return r.writeMails(ctx, func(tx *ent.Client) ([]mail.Message, error) {
		token, expires, err := issueToken(ctx, tx, accounttoken.KindRESET_PASSWORD, u, auth.ResetPasswordTTL, now)
		if err != nil {
			return nil, err
		}
		return []mail.Message{{ID: mail.NewID(), To: u.Email, Name: u.Name, Template: mail.ResetPassword, Token: token, Expires: expires}}, nil
	})
}

// verifyEmail spends a verification token and marks its address verified,
// if it is still the account's address.
func (r *Resolver) verifyEmail(ctx context.Context, token string) error {
	now := r.accountNow()
	var uid pulid.ID
	return r.writeUser(ctx, userWrite{User: &uid, Do: func(tx *ent.Client) error {
		t, err := spendToken(ctx, tx, accounttoken.KindVERIFY_EMAIL, token, now)
		if err != nil {
			return err
		}
		uid = t.UserID
		n, err := tx.User.Update().Where(user.ID(t.UserID), user.Email(t.Email)).SetEmailVerified(true).Save(ctx)
		if err != nil {
			return err
		}
		if n != 1 {
			return errBadAccountToken // the account is gone or has another address
		}
		return nil
	}})
}

// resetPassword sets a new password with a reset token, voids the user's
// other reset tokens, and ends every session of the user everywhere, as a
// password change does (ChangePassword): the new password and the end of
// the sessions commit together (the ledger) before Redis is told.
func (r *Resolver) resetPassword(ctx context.Context, token, newPassword string) error {
	if r.limiter != nil {
		if err := r.limiter.ResetAttempt(ctx, auth.MetaFrom(ctx).IP); err != nil {
			return err
		}
	}
	if err := checkNewPassword("newPassword", newPassword); err != nil {
		return err
	}
	now := r.accountNow()
	// A look first, outside the transaction, so that a bad token costs no
	// password hash; the spend below is what decides.
	t, err := r.client.AccountToken.Query().Where(accounttoken.Hash(auth.HashAccountToken(token)),
		accounttoken.KindEQ(accounttoken.KindRESET_PASSWORD), accounttoken.UsedAtIsNil(), accounttoken.ExpiresAtGT(now)).Only(ctx)
	if ent.IsNotFound(err) {
		return errBadAccountToken
	}
	if err != nil {
		return err
	}
	hash, err := r.passwords.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	uid := t.UserID
	sids, err := r.sessions.IDs(ctx, uid)
	if err != nil {
		return err
	}
	var mails []mail.Message
	err = r.writeUser(ctx, userWrite{User: &uid, Mails: &mails, Do: func(tx *ent.Client) error {
		t, err := spendToken(ctx, tx, accounttoken.KindRESET_PASSWORD, token, now)
		if err != nil {
			return err
		}
		err = tx.AccountToken.Update().Where(accounttoken.UserID(t.UserID), accounttoken.KindEQ(accounttoken.KindRESET_PASSWORD),
			accounttoken.UsedAtIsNil()).SetUsedAt(now).Exec(ctx)
		if err != nil {
			return err
		}
		u, err := tx.User.Get(ctx, t.UserID)
		if err != nil {
			return err
		}
		// The link reached the address: it is verified, if it is still
		// the account's.
		err = u.Update().SetPasswordHash(hash).AddCredentialsVersion(1).
			SetEmailVerified(u.EmailVerified || u.Email == t.Email).Exec(ctx)
		if err != nil {
			return err
		}
		mails = append(mails, mail.Message{ID: mail.NewID(), To: u.Email, Name: u.Name, Template: mail.PasswordChanged,
			Data: map[string]string{"time": now.Format(time.RFC1123)}})
		if err := r.recordSecurityEvent(ctx, tx, t.UserID, auth.EventPasswordReset); err != nil {
			return err
		}
		return r.sessions.Ledger().Record(ctx, tx, t.UserID, sids, now)
	}})
	if err != nil {
		return err
	}
	// Committed: no session of the old password refreshes any more (the
	// ledger, the credentials version). Now every instance is told, so
	// their access tokens stop working at once too.
	if err := r.sessions.EndAll(ctx, uid, auth.EndPasswordReset, sids); err != nil {
		r.log.ErrorContext(ctx, "end sessions after a password reset", slog.Any("error", err))
	}
	return nil
}
