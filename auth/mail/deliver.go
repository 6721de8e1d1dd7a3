package mail

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/outbox"
	"github.com/authql/authql/ent/sentmail"
)

// Config says how mail is rendered and sent.
type Config struct {
	// Product is the name mails sign with.
	Product string
	// PublicURL is the base of every link (scheme, host, optional path).
	PublicURL string
	// From is the sender's address ("Name <addr>" or a bare address).
	From string
	// SMTPURL is where mail goes (see ParseSMTPURL); empty: to Log, and
	// kept in the database for `server mails`.
	SMTPURL string
	// Log receives each mail when there is no SMTP, and delivery notes.
	Log *slog.Logger
	// Now is the clock of the sent-mail records (default time.Now).
	Now func() time.Time
}

// Mailer delivers the outbox's mail rows.
type Mailer struct {
	client *ent.Client
	cfg    Config
	r      *renderer
	smtp   *SMTP // nil: to the log
}

// New returns a Mailer recording sent mail in client's database. Returns
// an error for an SMTP URL ParseSMTPURL refuses.
func New(client *ent.Client, cfg Config) (*Mailer, error) {
	if cfg.Product == "" {
		cfg.Product = "authql"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r, err := newRenderer(cfg.Product, cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	m := &Mailer{client: client, cfg: cfg, r: r}
	if cfg.SMTPURL != "" {
		if m.smtp, err = ParseSMTPURL(cfg.SMTPURL); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handle registers the Mailer as the outbox's handler of Kind.
func (m *Mailer) Handle(o *outbox.Outbox) { o.Handle(Kind, m.Deliver) }

// NewID names a new message (Message.ID).
func NewID() string { return strings.ToLower(rand.Text()) }

// Deliver sends one outbox payload (a Message in JSON) unless a message of
// its id was sent already, then records it as sent. The outbox retries an
// error with backoff. A mail whose link has expired, or whose recipient
// the SMTP server refuses for good (a 5xx reply to RCPT TO), is dropped
// instead: logged at WARN, never recorded as sent, its row deleted.
//
// A mail is sent at most once per id except in one window: SMTP accepted
// it and the record of that could not be written (the database failed, or
// the process died, right then). The retry sends it again with the same
// Message-ID header, which mail clients show as one mail.
func (m *Mailer) Deliver(ctx context.Context, payload []byte) error {
	var msg Message
	if err := json.Unmarshal(payload, &msg); err != nil {
		return fmt.Errorf("decode mail: %w", err)
	}
	if msg.ID == "" || msg.To == "" {
		return errors.New("mail: message without id or recipient")
	}
	sent, err := m.client.SentMail.Query().Where(sentmail.ID(msg.ID)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("look up sent mail: %w", err)
	}
	if sent {
		return nil // a repeated delivery of a mail sent already
	}
	if !msg.Expires.IsZero() && !m.cfg.Now().Before(msg.Expires) {
		m.drop(ctx, msg, "its link expired before it could be sent", slog.Time("expired", msg.Expires))
		return nil
	}
	out, err := m.r.render(msg)
	if err != nil {
		return err
	}
	rec := m.client.SentMail.Create().SetID(msg.ID).SetTemplate(string(msg.Template)).SetTo(msg.To).
		SetSubject(truncate(out.Subject, 200)).SetSentAt(m.cfg.Now().UTC())
	if m.smtp != nil {
		if err := m.smtp.send(ctx, m.cfg.From, msg, out); err != nil {
			if code, ok := recipientRefused(err); ok {
				m.drop(ctx, msg, "the SMTP server refused the recipient for good", slog.Int("smtp_code", code))
				return nil
			}
			return err
		}
	} else {
		// Development: the mail goes to the log stream, and the database
		// keeps it for `server mails` (another process) to list.
		rec.SetText(out.Text)
		m.cfg.Log.InfoContext(ctx, "mail (no APP_SMTP_URL: logged, not sent)", slog.String("to", msg.To),
			slog.String("subject", out.Subject), slog.String("link", out.Link), slog.String("id", msg.ID))
	}
	err = rec.OnConflictColumns(sentmail.FieldID).DoNothing().Exec(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("record sent mail: %w", err)
	}
	return nil
}

// drop logs a mail given up on. The recipient's address stays out of the
// log: the id and the template name the mail.
func (m *Mailer) drop(ctx context.Context, msg Message, why string, detail slog.Attr) {
	m.cfg.Log.WarnContext(ctx, "mail dropped: "+why, slog.String("id", msg.ID), slog.String("template", string(msg.Template)), detail)
}

// recipientRefused reports whether err is the SMTP server refusing the
// recipient with a permanent reply (5xx to RCPT TO): asking again gets the
// same answer. A refused sender or message, or a server that cannot be
// reached, is the operator's to fix, and the mail waits for it.
func recipientRefused(err error) (code int, ok bool) {
	var se *gomail.SendError
	if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && se.ErrorCode()/100 == 5 {
		return se.ErrorCode(), true
	}
	return 0, false
}

// SentRetention is how long the record of a sent mail is kept. A repeated
// delivery comes within the outbox's claim lease (30 s) of the first, or,
// when the database failed right after the send, once the database is
// back: a week covers any outage the service survives, and leaves
// `server mails` a week of mails to list.
const SentRetention = 7 * 24 * time.Hour

// Prune deletes the records of the mails sent longer ago than
// SentRetention and returns how many it deleted.
func (m *Mailer) Prune(ctx context.Context) (int, error) {
	return m.client.SentMail.Delete().Where(sentmail.SentAtLT(m.cfg.Now().UTC().Add(-SentRetention))).Exec(ctx)
}

// Render renders a message as Deliver would send it.
func (m *Mailer) Render(msg Message) (Rendered, error) { return m.r.render(msg) }

// Sent lists the mails sent (or logged) most recent first, up to n.
func Sent(ctx context.Context, client *ent.Client, n int) ([]*ent.SentMail, error) {
	return client.SentMail.Query().Order(ent.Desc(sentmail.FieldSentAt)).Limit(n).All(ctx)
}

// SMTP is a parsed APP_SMTP_URL.
type SMTP struct {
	host       string
	port       int
	user, pass string
	implicit   bool // smtps://: TLS from the first byte
	policy     gomail.TLSPolicy
}

// ParseSMTPURL reads smtp://[user:pass@]host[:port] (STARTTLS, port 587
// by default) or smtps://[user:pass@]host[:port] (implicit TLS, port 465).
// For smtp://, ?tls=mandatory (the default) refuses a server without
// STARTTLS, ?tls=opportunistic uses it if offered, ?tls=none never (a
// local relay or a test server).
func ParseSMTPURL(s string) (*SMTP, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	c := &SMTP{host: u.Hostname(), policy: gomail.TLSMandatory}
	switch u.Scheme {
	case "smtp":
		c.port = 587
	case "smtps":
		c.port, c.implicit = 465, true
	default:
		return nil, fmt.Errorf("scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if c.host == "" {
		return nil, errors.New("no host")
	}
	if p := u.Port(); p != "" {
		if c.port, err = strconv.Atoi(p); err != nil || c.port <= 0 || c.port > 65535 {
			return nil, fmt.Errorf("bad port %q", p)
		}
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	switch tls := u.Query().Get("tls"); {
	case tls == "" || tls == "mandatory":
	case tls == "opportunistic" && !c.implicit:
		c.policy = gomail.TLSOpportunistic
	case tls == "none" && !c.implicit:
		c.policy = gomail.NoTLS
	default:
		return nil, fmt.Errorf("tls must be mandatory, opportunistic or none (smtp:// only), not %q", tls)
	}
	return c, nil
}

// Insecure reports whether mail may cross the network unencrypted.
func (c *SMTP) Insecure() bool { return !c.implicit && c.policy != gomail.TLSMandatory }

// Addr is host:port, for logs (never the credentials).
func (c *SMTP) Addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// send hands one message to the server, through a connection of its own:
// mail is rare, and a pooled connection would only time out in between.
func (c *SMTP) send(ctx context.Context, from string, m Message, r Rendered) error {
	opts := []gomail.Option{gomail.WithPort(c.port), gomail.WithTimeout(8 * time.Second)}
	if c.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(c.policy))
	}
	if c.user != "" {
		// The strongest mechanism the server offers; PLAIN and LOGIN only
		// over TLS (go-mail refuses them in the clear).
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(c.user), gomail.WithPassword(c.pass))
	}
	client, err := gomail.NewClient(c.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return fmt.Errorf("mail from %q: %w", from, err)
	}
	if err := msg.AddToFormat(m.Name, m.To); err != nil {
		return fmt.Errorf("mail to: %w", err)
	}
	msg.Subject(r.Subject)
	// The same Message-ID on every attempt: a mail sent twice (see
	// Deliver) is one mail to the reader's client.
	msg.SetMessageIDWithValue(m.ID + "@" + c.messageIDDomain(from))
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send to %s: %w", c.Addr(), err)
	}
	return nil
}

// messageIDDomain is the domain of the sender's address.
func (c *SMTP) messageIDDomain(from string) string {
	if i := strings.LastIndex(from, "@"); i >= 0 {
		return strings.Trim(from[i+1:], "> ")
	}
	return c.host
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
