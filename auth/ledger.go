package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authql/authql/ent"
	entrevocation "github.com/authql/authql/ent/revocation"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// Ledger is the database's part in revocation: the record of ended
// sessions and each user's credentials version. Redis may lose writes (AOF
// everysec, a restored snapshot, a failover to a lagging replica) and bring
// back a session that was ended, even one killed by reuse detection; the
// database does not. So a session is ended in the ledger before it is ended
// in Redis, refresh consults the ledger, and every instance reloads recent
// entries into memory when it resyncs.
type Ledger struct {
	db *ent.Client
}

// NewLedger returns the ledger kept in db.
func NewLedger(db *ent.Client) *Ledger { return &Ledger{db: db} }

// Record writes that sessions of a user ended at at. With tx it writes in
// the caller's transaction (a password change commits the new password and
// the end of every session together); otherwise on its own. Recording a
// session twice keeps the first time.
func (l *Ledger) Record(ctx context.Context, tx *ent.Client, uid pulid.ID, sids []string, at time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	if tx == nil {
		tx = l.db
	}
	bulk := make([]*ent.RevocationCreate, len(sids))
	for i, sid := range sids {
		bulk[i] = tx.Revocation.Create().SetID(sid).SetUserID(uid).SetRevokedAt(at.UTC())
	}
	if err := tx.Revocation.CreateBulk(bulk...).OnConflictColumns(entrevocation.FieldID).DoNothing().Exec(ctx); err != nil {
		return fmt.Errorf("record revocation: %w", err)
	}
	return nil
}

// bump raises the user's credentials version: every session started on an
// older one ends at its next refresh, or at once if it is being started.
func (l *Ledger) bump(ctx context.Context, uid pulid.ID) error {
	if err := l.db.User.UpdateOneID(uid).AddCredentialsVersion(1).Exec(ctx); err != nil && !ent.IsNotFound(err) {
		return fmt.Errorf("bump credentials version: %w", err)
	}
	return nil
}

// state returns the user's credentials version and whether the session has
// ended. A user that does not exist (deleted) has ended every session.
func (l *Ledger) state(ctx context.Context, uid pulid.ID, sid string) (version int64, ended bool, err error) {
	u, err := l.db.User.Query().Where(user.ID(uid)).Select(user.FieldCredentialsVersion).Only(ctx)
	if ent.IsNotFound(err) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read credentials version: %w", err)
	}
	ended, err = l.db.Revocation.Query().Where(entrevocation.ID(sid)).Exist(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("read revocation: %w", err)
	}
	return u.CredentialsVersion, ended, nil
}

// version returns the user's credentials version, read through tx if it
// is not nil; errUnknownUser if there is no such user (read from the pool:
// none committed yet).
func (l *Ledger) version(ctx context.Context, tx *ent.Client, uid pulid.ID) (int64, error) {
	db := l.db
	if tx != nil {
		db = tx
	}
	u, err := db.User.Query().Where(user.ID(uid)).Select(user.FieldCredentialsVersion).Only(ctx)
	if ent.IsNotFound(err) {
		return 0, errUnknownUser
	}
	if err != nil {
		return 0, fmt.Errorf("read credentials version: %w", err)
	}
	return u.CredentialsVersion, nil
}

var errUnknownUser = errors.New("unknown user")

// ended returns whether the session has ended.
func (l *Ledger) ended(ctx context.Context, sid string) (bool, error) {
	ok, err := l.db.Revocation.Query().Where(entrevocation.ID(sid)).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("read revocation: %w", err)
	}
	return ok, nil
}

// since returns the sessions ended at or after t.
func (l *Ledger) since(ctx context.Context, t time.Time) ([]*ent.Revocation, error) {
	rs, err := l.db.Revocation.Query().Where(entrevocation.RevokedAtGTE(t.UTC())).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	return rs, nil
}

// prune forgets sessions ended before t: no token of theirs exists any more.
func (l *Ledger) prune(ctx context.Context, t time.Time) (int, error) {
	return l.db.Revocation.Delete().Where(entrevocation.RevokedAtLT(t.UTC())).Exec(ctx)
}
