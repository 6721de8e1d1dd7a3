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
	rv := &revocations{now: func() time.Time { return now }}
	ann, bob := pulid.ID("US01ARZ3NDEKTSV4RRFFQ69G5FAV"), pulid.ID("US01ARZ3NDEKTSV4RRFFQ69G5FAW")
	rv.apply(revocation{kind: 's', user: ann, id: "SE1", until: now.Add(15 * time.Minute)},
		revocation{kind: 't', user: ann, id: "jti1", until: now.Add(time.Minute)})
	if !rv.isRevoked(ann, "SE1", "other") || !rv.isRevoked(ann, "SE2", "jti1") {
		t.Fatal("revocations not applied")
	}
	if rv.isRevoked(bob, "SE1", "jti1") {
		t.Error("ann's revocations match bob's tokens")
	}
	// A later revocation of the same key keeps the later end.
	rv.apply(revocation{kind: 's', user: ann, id: "SE1", until: now.Add(time.Minute)})
	now = now.Add(2 * time.Minute)
	if !rv.isRevoked(ann, "SE1", "other") {
		t.Error("an earlier end replaced the session's later one")
	}
	rv.prune()
	if got := rv.entries(); got != 1 {
		t.Errorf("%d entries after the token's expiry, want 1 (the session's)", got)
	}
	now = now.Add(15 * time.Minute)
	rv.prune()
	if got := rv.entries(); got != 0 {
		t.Errorf("%d entries once nothing can be presented, want 0", got)
	}
}

func (rv *revocations) entries() int {
	n := 0
	rv.revoked.Range(func(any, any) bool { n++; return true })
	return n
}

// The check on every authenticated request allocates nothing.
func TestIsRevokedAllocations(t *testing.T) {
	now := time.Now()
	rv := &revocations{now: func() time.Time { return now }}
	ann := pulid.ID("US01ARZ3NDEKTSV4RRFFQ69G5FAV")
	rv.apply(revocation{kind: 's', user: ann, id: "SE1", until: now.Add(time.Minute)})
	sid, jti := string([]byte("SE2")), string([]byte("jti2"))
	if n := testing.AllocsPerRun(100, func() {
		if rv.isRevoked(ann, sid, jti) {
			t.Fatal("not revoked")
		}
	}); n != 0 {
		t.Errorf("isRevoked: %v allocations, want 0", n)
	}
}
