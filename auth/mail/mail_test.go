package mail_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/auth/mail"
	"github.com/authql/authql/auth/mail/mailtest"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/ent/entdb/outbox"
)

func mustMailer(t *testing.T, client *ent.Client, smtpURL string) *mail.Mailer {
	t.Helper()
	m, err := mail.New(client, mail.Config{PublicURL: "https://app.example.com/", From: "authql <no-reply@example.com>", SMTPURL: smtpURL})
	if err != nil {
		t.Fatalf("mail.New: %v", err)
	}
	return m
}

func payload(t *testing.T, m mail.Message) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every template renders in text and HTML with the product name and its
// link, and no tracking: the token is the link's only query.
func TestTemplatesRender(t *testing.T) {
	t.Parallel()
	m := mustMailer(t, nil, "")
	for _, tmpl := range mail.Templates() {
		t.Run(string(tmpl), func(t *testing.T) {
			r, err := m.Render(mail.Message{ID: "x", To: "ann@example.com", Name: "Ann <b>", Template: tmpl, Token: "tok+/=",
				Data: map[string]string{"state": "on", "device": "Firefox", "address": "203.0.113.0/24", "time": "now"}})
			if err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"text": r.Text, "html": r.HTML} {
				if !strings.Contains(body, "authql") {
					t.Errorf("%s body lacks the product name:\n%s", name, body)
				}
			}
			if !strings.Contains(r.Text, r.Link) || !strings.HasPrefix(r.Link, "https://app.example.com/") {
				t.Errorf("link=%q, not in the text:\n%s", r.Link, r.Text)
			}
			if strings.Contains(r.HTML, "<b>") || strings.Contains(r.HTML, "<img") {
				t.Errorf("html has markup from data or an image:\n%s", r.HTML)
			}
			if strings.Contains(r.Link, "utm_") || strings.Count(r.Link, "?") > 1 {
				t.Errorf("link %q carries more than its token", r.Link)
			}
			if r.Subject == "" || strings.Contains(r.Subject, "\n") {
				t.Errorf("subject=%q", r.Subject)
			}
		})
	}
	r, _ := m.Render(mail.Message{To: "a@example.com", Template: mail.VerifyEmail, Token: "tok+/="})
	if got, want := r.Link, "https://app.example.com/verify-email?token=tok%2B%2F%3D"; got != want {
		t.Errorf("link=%q, want %q", got, want)
	}
}

// Without SMTP a mail goes to the log and is kept, with its text, for
// `server mails`; a delivery repeated by the outbox is recognised by the
// message's id and logs nothing more.
func TestDeliverToLogOnce(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	var logs strings.Builder
	m, err := mail.New(db.Client, mail.Config{PublicURL: "http://localhost:8080", From: "a@example.com",
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	msg := mail.Message{ID: mail.NewID(), To: "ann@example.com", Template: mail.VerifyEmail, Token: "secret-token"}
	for range 2 {
		if err := m.Deliver(context.Background(), payload(t, msg)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	if got := strings.Count(logs.String(), "secret-token"); got != 1 {
		t.Errorf("the link was logged %d times, want 1:\n%s", got, logs.String())
	}
	sent, err := mail.Sent(context.Background(), db.Client, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || !strings.Contains(sent[0].Text, "http://localhost:8080/verify-email?token=secret-token") {
		t.Fatalf("sent=%+v, want one mail with its link", sent)
	}
}

// Through a real SMTP server: the mail arrives once although the outbox
// delivers it twice, with both bodies and a stable Message-ID.
func TestDeliverSMTPOnce(t *testing.T) {
	t.Parallel()
	mp := mailtest.Start(t)
	db := entdbtest.Open(t)
	m := mustMailer(t, db.Client, mp.SMTPURL())
	msg := mail.Message{ID: mail.NewID(), To: "bob@example.com", Name: "Bob", Template: mail.ResetPassword, Token: "reset-token"}
	for range 2 {
		if err := m.Deliver(context.Background(), payload(t, msg)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	got := mp.Wait(t, "bob@example.com", 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got = mp.Messages(t, "bob@example.com"); len(got) != 1 {
		t.Fatalf("%d mails, want 1", len(got))
	}
	if !strings.Contains(got[0].Text, "https://app.example.com/reset-password?token=reset-token") ||
		!strings.Contains(got[0].HTML, "https://app.example.com/reset-password?token=reset-token") {
		t.Errorf("mail lacks its link:\n%s\n%s", got[0].Text, got[0].HTML)
	}
	if !strings.HasPrefix(got[0].MessageID, msg.ID) {
		t.Errorf("Message-ID=%q, want it to start with the message id %s", got[0].MessageID, msg.ID)
	}
}

// SMTP is down when the mail is first delivered: the outbox keeps the row
// and delivers it once the server is back, exactly once.
func TestDeliverSMTPDownThenUp(t *testing.T) {
	t.Parallel()
	mp := mailtest.Start(t)
	db := entdbtest.Open(t)
	m := mustMailer(t, db.Client, mp.SMTPURL())
	ob := outbox.New(db.Client, db.Dialect, outbox.Config{Poll: 50 * time.Millisecond})
	m.Handle(ob)
	mp.Stop()
	ctx := context.Background()
	msg := mail.Message{ID: mail.NewID(), To: "cy@example.com", Template: mail.VerifyEmail, Token: "t1"}
	tx, err := db.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	row, err := ob.Add(ctx, tx.Client(), mail.Kind, payload(t, msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ob.Deliver(ctx, row) // fails: SMTP is down
	if n := db.Client.Outbox.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d outbox rows after a failed send, want 1", n)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	mp.Restart(t)
	ob.Kick()
	mp.Wait(t, "cy@example.com", 1, outbox.MaxBackoff+10*time.Second)
	for deadline := time.Now().Add(5 * time.Second); db.Client.Outbox.Query().CountX(ctx) != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the outbox row was never deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := mp.Messages(t, "cy@example.com"); len(got) != 1 {
		t.Fatalf("%d mails, want 1", len(got))
	}
}

// The writer commits its mail and dies before sending it: another
// instance's worker sends it once the writer's lease ran out, once, even
// though a third instance polls the same table.
func TestMailOfAKilledWriterIsSentOnce(t *testing.T) {
	t.Parallel()
	mp := mailtest.Start(t)
	db := entdbtest.Open(t)
	ctx := context.Background()
	writer := outbox.New(db.Client, db.Dialect, outbox.Config{})
	mustMailer(t, db.Client, mp.SMTPURL()).Handle(writer)
	msg := mail.Message{ID: mail.NewID(), To: "dee@example.com", Template: mail.ResetPassword, Token: "t2"}
	tx, err := db.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Add(ctx, tx.Client(), mail.Kind, payload(t, msg)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The writer dies here: no Deliver. Two other instances run workers.
	start := time.Now()
	for range 2 {
		ob := outbox.New(db.Client, db.Dialect, outbox.Config{Poll: 50 * time.Millisecond})
		mustMailer(t, db.Client, mp.SMTPURL()).Handle(ob)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); ob.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	mp.Wait(t, "dee@example.com", 1, outbox.WriterLease+10*time.Second)
	if took := time.Since(start); took < outbox.WriterLease-time.Second {
		t.Errorf("sent after %v, before the writer's lease (%v) ran out", took, outbox.WriterLease)
	}
	time.Sleep(500 * time.Millisecond)
	if got := mp.Messages(t, "dee@example.com"); len(got) != 1 {
		t.Fatalf("%d mails, want exactly 1", len(got))
	}
}

// A mail whose link expired before it could be sent is dropped, not sent:
// it would lead to a refusal. One whose link still works is sent.
func TestDeliverDropsAMailWhoseLinkExpired(t *testing.T) {
	t.Parallel()
	srv := fakeSMTP(t, nil)
	db := entdbtest.Open(t)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var logs strings.Builder
	m, err := mail.New(db.Client, mail.Config{PublicURL: "https://app.example.com/", From: "no-reply@example.com", SMTPURL: srv.url,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	late := mail.Message{ID: mail.NewID(), To: "late@example.com", Template: mail.ResetPassword, Token: "t-late", Expires: now}
	live := mail.Message{ID: mail.NewID(), To: "live@example.com", Template: mail.ResetPassword, Token: "t-live", Expires: now.Add(time.Second)}
	for _, msg := range []mail.Message{late, live} {
		if err := m.Deliver(t.Context(), payload(t, msg)); err != nil {
			t.Fatalf("Deliver %s: %v", msg.To, err)
		}
	}
	if got := srv.delivered(); len(got) != 1 || got[0] != "live@example.com" {
		t.Errorf("delivered to %v, want live@example.com only", got)
	}
	sent, err := mail.Sent(t.Context(), db.Client, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].To != "live@example.com" {
		t.Errorf("sent records %+v, want the live mail's only", sent)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"mail dropped: its link expired before it could be sent\" id="+late.ID) ||
		strings.Contains(logs.String(), "late@example.com") || strings.Contains(logs.String(), "t-late") {
		t.Errorf("log:\n%s\nwant one WARN naming the dropped mail by id, without its address or token", logs.String())
	}
}

// The recipient's server refuses the address for good (5xx to RCPT TO):
// the mail is dropped, not retried for ever. A temporary refusal (4xx) is
// an error, so the outbox retries it.
func TestDeliverDropsARecipientRefusedForGood(t *testing.T) {
	t.Parallel()
	db := entdbtest.Open(t)
	srv := fakeSMTP(t, map[string]string{
		"gone@example.com": "550 5.1.1 no such user",
		"full@example.com": "452 4.2.2 mailbox full",
	})
	var logs strings.Builder
	m, err := mail.New(db.Client, mail.Config{PublicURL: "https://app.example.com/", From: "no-reply@example.com", SMTPURL: srv.url,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gone := mail.Message{ID: mail.NewID(), To: "gone@example.com", Template: mail.VerifyEmail, Token: "t1"}
	if err := m.Deliver(t.Context(), payload(t, gone)); err != nil {
		t.Errorf("a recipient refused with 550: Deliver = %v, want nil (dropped)", err)
	}
	if !strings.Contains(logs.String(), "mail dropped: the SMTP server refused the recipient for good\" id="+gone.ID) ||
		!strings.Contains(logs.String(), "smtp_code=550") || strings.Contains(logs.String(), "gone@example.com") {
		t.Errorf("log:\n%s\nwant a WARN naming the dropped mail and the reply code, not the address", logs.String())
	}
	full := mail.Message{ID: mail.NewID(), To: "full@example.com", Template: mail.VerifyEmail, Token: "t2"}
	if err := m.Deliver(t.Context(), payload(t, full)); err == nil {
		t.Error("a recipient refused with 452: Deliver = nil, want an error (retried)")
	}
	if sent, err := mail.Sent(t.Context(), db.Client, 10); err != nil || len(sent) != 0 {
		t.Errorf("sent records %+v (%v), want none", sent, err)
	}
	if got := srv.delivered(); len(got) != 0 {
		t.Errorf("delivered to %v, want nobody", got)
	}
}

// smtpServer is a minimal SMTP server on loopback (no TLS, no auth): it
// answers RCPT TO for each address of refuse with its reply, accepts the
// rest, and records the recipients of each message it accepts.
type smtpServer struct {
	url string
	mu  sync.Mutex
	to  []string
}

func (s *smtpServer) delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.to)
}

func fakeSMTP(t *testing.T, refuse map[string]string) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{url: "smtp://" + ln.Addr().String() + "?tls=none"}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, refuse)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn, refuse map[string]string) {
	defer c.Close()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 fake.test ESMTP")
	var rcpts []string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250 fake.test")
		case "RCPT":
			_, addr, _ := strings.Cut(arg, ":")
			to, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), " ")
			to = strings.Trim(to, "<>")
			if reply, ok := refuse[to]; ok {
				_ = tp.PrintfLine("%s", reply)
				continue
			}
			rcpts = append(rcpts, to)
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			if _, err := tp.ReadDotBytes(); err != nil {
				return
			}
			s.mu.Lock()
			s.to = append(s.to, rcpts...)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "RSET":
			rcpts = nil
			_ = tp.PrintfLine("250 ok")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default: // MAIL, NOOP
			_ = tp.PrintfLine("250 ok")
		}
	}
}
