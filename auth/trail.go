package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/securityevent"
)

// EventKind is the kind of a security event.
type EventKind = securityevent.Kind

// The kinds of security events.
const (
	EventSignIn           = securityevent.KindSIGN_IN
	EventSignInFailed     = securityevent.KindSIGN_IN_FAILED
	EventNewDevice        = securityevent.KindNEW_DEVICE
	EventPasswordChanged  = securityevent.KindPASSWORD_CHANGED
	EventPasswordReset    = securityevent.KindPASSWORD_RESET
	EventMFAEnabled       = securityevent.KindMFA_ENABLED
	EventMFADisabled      = securityevent.KindMFA_DISABLED
	EventRecoveryCodesNew = securityevent.KindRECOVERY_CODES_REGENERATED
	EventSessionRevoked   = securityevent.KindSESSION_REVOKED
	EventRefreshReused    = securityevent.KindREFRESH_TOKEN_REUSED
)

// Retention of a user's trail: events older than TrailMaxAge, and any
// beyond the newest TrailMaxEvents, are deleted as new ones are recorded.
const (
	TrailMaxAge    = 90 * 24 * time.Hour
	TrailMaxEvents = 1000
	// maxDevice bounds the stored User-Agent, in characters.
	maxDevice = 200
)

// Trail is the security-event trail of every user, in the database.
type Trail struct {
	db  *ent.Client
	now func() time.Time
}

// NewTrail returns the trail kept in db; now is its clock (nil: time.Now).
func NewTrail(db *ent.Client, now func() time.Time) *Trail {
	if now == nil {
		now = time.Now
	}
	return &Trail{db: db, now: now}
}

// Record writes an event of a user, from the client m describes, and
// prunes the user's trail to its retention. With tx it writes in the
// caller's transaction (the change the event reports commits with it);
// otherwise on its own.
func (t *Trail) Record(ctx context.Context, tx *ent.Client, uid pulid.ID, kind EventKind, m Meta) (*ent.SecurityEvent, error) {
	if tx == nil {
		tx = t.db
	}
	now := t.now().UTC().Truncate(time.Microsecond)
	ev, err := tx.SecurityEvent.Create().SetUserID(uid).SetKind(kind).SetCreatedAt(now).
		SetAddress(AddressPrefix(m.IP)).SetDevice(Device(m.UserAgent)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record security event: %w", err)
	}
	if err := t.prune(ctx, tx, uid, now); err != nil {
		return nil, err
	}
	return ev, nil
}

// prune deletes the user's events past the retention.
func (t *Trail) prune(ctx context.Context, tx *ent.Client, uid pulid.ID, now time.Time) error {
	cutoff := now.Add(-TrailMaxAge)
	// The oldest event to keep by count, if there are more than that.
	last, err := tx.SecurityEvent.Query().Where(securityevent.UserID(uid)).
		Order(ent.Desc(securityevent.FieldCreatedAt), ent.Desc(securityevent.FieldID)).
		Offset(TrailMaxEvents - 1).Limit(1).All(ctx)
	if err != nil {
		return fmt.Errorf("prune security events: %w", err)
	}
	if len(last) == 1 && last[0].CreatedAt.After(cutoff) {
		cutoff = last[0].CreatedAt
	}
	_, err = tx.SecurityEvent.Delete().
		Where(securityevent.UserID(uid), securityevent.CreatedAtLT(cutoff)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("prune security events: %w", err)
	}
	return nil
}

// KnownDevice reports whether the user has signed in before from the
// device and address prefix m describes (first: the user has never signed
// in at all, from anywhere: the first device is nobody's new one). It reads
// through tx, the caller's transaction, so it needs no second connection.
func (t *Trail) KnownDevice(ctx context.Context, tx *ent.Client, uid pulid.ID, m Meta) (known, first bool, err error) {
	signIns := tx.SecurityEvent.Query().Where(securityevent.UserID(uid), securityevent.KindEQ(EventSignIn))
	known, err = signIns.Clone().Where(securityevent.Address(AddressPrefix(m.IP)),
		securityevent.Device(Device(m.UserAgent))).Exist(ctx)
	if err != nil || known {
		return known, false, err
	}
	some, err := signIns.Exist(ctx)
	return false, !some, err
}

// AddressPrefix is how a security event keeps a client address: its /24
// (IPv4) or /48 (IPv6) prefix, enough to tell networks apart and not to
// locate a household. Not an address: empty.
func AddressPrefix(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// Device is how a security event keeps a User-Agent: trimmed to 200
// characters of valid UTF-8.
func Device(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	if utf8.RuneCountInString(ua) <= maxDevice {
		return ua
	}
	return string([]rune(ua)[:maxDevice])
}
