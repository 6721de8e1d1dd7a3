package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// recordSecurityEvent writes an event of kind into userID's security trail
// (mySecurityEvents), with the request's client (address prefix and
// User-Agent). With tx it commits with the change it reports; with nil it
// is written on its own. Flows that change credentials (a password reset)
// call it in their transaction.
func (r *Resolver) recordSecurityEvent(ctx context.Context, tx *ent.Client, userID pulid.ID, kind auth.EventKind) error {
	if r.trail == nil {
		return nil
	}
	_, err := r.trail.Record(ctx, tx, userID, kind, auth.MetaFrom(ctx))
	return err
}

// noteSecurityEvent records an event that follows something already done
// (a session ended, a sign-in refused): a failure to record it is logged,
// and does not undo or fail what happened.
func (r *Resolver) noteSecurityEvent(ctx context.Context, userID pulid.ID, kind auth.EventKind) {
	if err := r.recordSecurityEvent(ctx, nil, userID, kind); err != nil {
		r.log.ErrorContext(ctx, "record security event", slog.String("kind", string(kind)), slog.Any("error", err))
	}
}

// recordSignIn records, in tx, a sign-in of u from the request's client:
// SIGN_IN, and NEW_DEVICE with a mail to the owner if the account has
// signed in before but never from this device (User-Agent) and network
// (address prefix). The first sign-in of an account is nobody's new
// device. It returns the mail to deliver after the commit, if any.
func (r *Resolver) recordSignIn(ctx context.Context, tx *ent.Client, u *ent.User) ([]followUp, error) {
	if r.trail == nil {
		return nil, nil
	}
	m := auth.MetaFrom(ctx)
	known, first, err := r.trail.KnownDevice(ctx, tx, u.ID, m)
	if err != nil {
		return nil, err
	}
	if err := r.recordSecurityEvent(ctx, tx, u.ID, auth.EventSignIn); err != nil {
		return nil, err
	}
	if known || first {
		return nil, nil
	}
	if err := r.recordSecurityEvent(ctx, tx, u.ID, auth.EventNewDevice); err != nil {
		return nil, err
	}
	f, err := r.recordMail(ctx, tx, u, mail.NewDevice, map[string]string{
		"device":  auth.Device(m.UserAgent),
		"address": auth.AddressPrefix(m.IP),
		"time":    r.sessions.Tokens().Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return nil, err
	}
	return []followUp{f}, nil
}

// signInRecorded records a sign-in that has already started its session
// (login without a second factor) and delivers its mail: a failure is
// logged, the session stands.
func (r *Resolver) signInRecorded(ctx context.Context, u *ent.User) {
	var fs []followUp
	err := withTx(ctx, r.client, func(tx *ent.Client) error {
		var err error
		fs, err = r.recordSignIn(ctx, tx, u)
		return err
	})
	if err != nil {
		r.log.ErrorContext(ctx, "record sign-in", slog.Any("error", err))
		return
	}
	for _, f := range fs {
		r.deliver(ctx, f)
	}
}

// recordMail writes a mail to u into tx's outbox (auth/mail): it is sent
// once the transaction commits, by the mail worker.
func (r *Resolver) recordMail(ctx context.Context, tx *ent.Client, u *ent.User, t mail.Template, data map[string]string) (followUp, error) {
	return r.record(ctx, tx, mail.Kind, mail.Message{
		ID: mail.NewID(), To: u.Email, Name: u.Name, Template: t, Data: data,
	})
}
