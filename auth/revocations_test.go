package auth

import (
	"testing"
	"time"

	"github.com/authql/authql/ent/schema/pulid"
)

// Revocations are kept only while a token they name could still be
// presented, and only ever match their own user.
func TestRevocationsExpireAndStayPerUser(t *testing.T) {
	now := time.Now()
	rv := &revocations{revoked: map[revKey]time.Time{}, now: func() time.Time { return now }}
	ann, bob := pulid.ID("US01ARZ3NDEKTSV4RRFFQ69G5FAV"), pulid.ID("US01ARZ3NDEKTSV4RRFFQ69G5FAW")
	rv.apply(revocation{kind: 's', user: ann, id: "SE1", until: now.Add(15 * time.Minute)},
		revocation{kind: 't', user: ann, id: "jti1", until: now.Add(time.Minute)})
	if !rv.isRevoked(ann, "SE1", "other") || !rv.isRevoked(ann, "SE2", "jti1") {
		t.Fatal("revocations not applied")
	}
	if rv.isRevoked(bob, "SE1", "jti1") {
		t.Error("ann's revocations match bob's tokens")
	}
	now = now.Add(2 * time.Minute)
	rv.prune()
	if got := len(rv.revoked); got != 1 {
		t.Errorf("%d entries after the token's expiry, want 1 (the session's)", got)
	}
	now = now.Add(15 * time.Minute)
	rv.prune()
	if got := len(rv.revoked); got != 0 {
		t.Errorf("%d entries once nothing can be presented, want 0", got)
	}
}
