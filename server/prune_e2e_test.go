package main

import (
	"testing"
	"time"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/ent/accounttoken"
	"github.com/authql/authql/ent/sentmail"
)

// The hourly prune deletes account tokens past their expiry and sent-mail
// records past mail.SentRetention, and keeps the rest: a live token, a
// recent record.
func TestPruneDeletesOnlyWhatNothingCanUse(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	db := s.app.db.Client
	s.register(t, "expired@example.com", "plum-tree-42", "Expired") // its verification token
	e.clock.Advance(auth.VerifyEmailTTL + time.Minute)
	s.register(t, "live@example.com", "plum-tree-42", "Live")
	now := time.Now().UTC()
	for id, sent := range map[string]time.Time{"old": now.Add(-mail.SentRetention - time.Hour), "recent": now.Add(-24 * time.Hour)} {
		if err := db.SentMail.Create().SetID("prune-" + id).SetTemplate("verify_email").SetTo(id + "@example.com").
			SetSubject("s").SetSentAt(sent).Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	tokens := func(email string) int {
		t.Helper()
		n, err := db.AccountToken.Query().Where(accounttoken.Email(email)).Count(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := tokens("expired@example.com"); got != 1 {
		t.Fatalf("before the prune: %d tokens of the expired account, want 1", got)
	}

	s.app.prune(t.Context())

	if got := tokens("expired@example.com"); got != 0 {
		t.Errorf("expired token: %d rows after the prune, want 0", got)
	}
	if got := tokens("live@example.com"); got != 1 {
		t.Errorf("live token: %d rows after the prune, want 1", got)
	}
	for id, want := range map[string]bool{"old": false, "recent": true} {
		got, err := db.SentMail.Query().Where(sentmail.ID("prune-" + id)).Exist(t.Context())
		if err != nil || got != want {
			t.Errorf("sent mail %s after the prune: present=%v (%v), want %v", id, got, err, want)
		}
	}
}
