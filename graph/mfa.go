package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/recoverycode"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
	"github.com/authql/authql/graph/model"
)

// MFADeps are what two-factor sign-in needs.
type MFADeps struct {
	// Challenges keep the pending second steps of sign-ins.
	Challenges *auth.Challenges
	// Sealer encrypts TOTP secrets at rest; nil: two-factor sign-in is
	// unavailable.
	Sealer *auth.Sealer
	// Issuer is the name authenticator apps show for the account.
	Issuer string
}

// errMFAUnavailable: a schema built without a Sealer (tests of other
// parts) cannot keep TOTP secrets.
var errMFAUnavailable = errors.New("two-factor sign-in is not configured")

// authDirective implements @auth(requires): a live session, and with
// requires: MFA one signed in with a second factor.
func authDirective(ctx context.Context, obj any, next graphql.Resolver, requires *model.AuthRequirement) (any, error) {
	if requires != nil && *requires == model.AuthRequirementMfa {
		if _, err := auth.RequireMFA(ctx); err != nil {
			return nil, err
		}
		return next(ctx)
	}
	return auth.AuthDirective(ctx, obj, next)
}

// mfaUser reads the viewer's record with its TOTP state (the cached
// record has none).
func (r *Resolver) mfaUser(ctx context.Context) (*ent.User, error) {
	v, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if r.mfa.Sealer == nil {
		return nil, errMFAUnavailable
	}
	u, err := r.client.User.Get(ctx, v.UserID)
	if ent.IsNotFound(err) {
		return nil, auth.ErrSessionRevoked
	}
	return u, err
}

// totpSecret opens u's sealed TOTP secret.
func (r *Resolver) totpSecret(u *ent.User) (string, error) {
	if u.TotpSecret == nil || r.mfa.Sealer == nil {
		return "", auth.ErrMFANotEnrolled
	}
	return r.mfa.Sealer.Open(*u.TotpSecret, string(u.ID))
}

// secondFactor checks a code of u (a TOTP code, or with recovery an unused
// recovery code) and uses it up in tx: the code's time step becomes the
// last one accepted (a conditional update, so of two requests with one
// code only one wins), or the recovery code is marked used. Wrong codes
// are charged to the account's budget, which is looked at first. Reports
// whether the code was good.
func (r *Resolver) secondFactor(ctx context.Context, tx *ent.Client, u *ent.User, code string, recovery bool) (bool, error) {
	if r.limiter != nil {
		if err := r.limiter.MFA(ctx, u.ID); err != nil {
			return false, err
		}
	}
	ok, err := r.useCode(ctx, tx, u, code, recovery)
	if err != nil || ok {
		return ok, err
	}
	if r.limiter != nil {
		if err := r.limiter.MFAFailed(ctx, u.ID); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (r *Resolver) useCode(ctx context.Context, tx *ent.Client, u *ent.User, code string, recovery bool) (bool, error) {
	now := r.sessions.Tokens().Now()
	if auth.LooksLikeTOTP(code) {
		secret, err := r.totpSecret(u)
		if err != nil {
			return false, err
		}
		step, ok := auth.MatchTOTP(secret, code, now, u.TotpLastStep)
		if !ok {
			return false, nil
		}
		n, err := tx.User.Update().Where(user.ID(u.ID), user.TotpLastStepLT(step)).SetTotpLastStep(step).Save(ctx)
		return n == 1, err
	}
	if !recovery || len(code) > 64 {
		return false, nil
	}
	n, err := tx.RecoveryCode.Update().
		Where(recoverycode.UserID(u.ID), recoverycode.CodeHash(auth.HashRecoveryCode(u.ID, code)), recoverycode.UsedAtIsNil()).
		SetUsedAt(now.UTC()).Save(ctx)
	return n == 1, err
}

// newRecoveryCodes replaces u's recovery codes in tx with fresh ones and
// returns them (the only time they are readable).
func (r *Resolver) newRecoveryCodes(ctx context.Context, tx *ent.Client, uid pulid.ID) ([]string, error) {
	if _, err := tx.RecoveryCode.Delete().Where(recoverycode.UserID(uid)).Exec(ctx); err != nil {
		return nil, err
	}
	codes := auth.NewRecoveryCodes()
	bulk := make([]*ent.RecoveryCodeCreate, len(codes))
	for i, c := range codes {
		bulk[i] = tx.RecoveryCode.Create().SetUserID(uid).SetCodeHash(auth.HashRecoveryCode(uid, c))
	}
	if err := tx.RecoveryCode.CreateBulk(bulk...).Exec(ctx); err != nil {
		return nil, err
	}
	return codes, nil
}

// challengeMFA answers a right password of an account with two-factor
// sign-in on: no session yet, a challenge for verifyMfa.
func (r *Resolver) challengeMFA(ctx context.Context, u *ent.User) error {
	if r.mfa.Challenges == nil {
		return errMFAUnavailable
	}
	c, err := r.mfa.Challenges.New(ctx, u.ID)
	if err != nil {
		return err
	}
	return &auth.MFARequiredError{Challenge: c, ExpiresIn: auth.ChallengeTTL}
}

// mfaMeta is the request's client, signed in with a second factor.
func mfaMeta(ctx context.Context) auth.Meta {
	m := auth.MetaFrom(ctx)
	m.AMR = []string{auth.AMRPassword, auth.AMROTP}
	return m
}
