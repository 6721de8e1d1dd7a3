// Package mail is the product's outgoing mail: what a message says and how it
// reaches the user.
//
// A flow that sends mail (verification, password reset, a new-device
// notice) writes a Message into the outbox in the same transaction as the
// change it reports, with kind Kind; it never talks to SMTP itself. So a
// mail exists exactly when its change committed, and a crash between the
// commit and the send delays it but never drops it. Two things do drop a
// mail rather than retry it for ever: its link expired before it could be
// sent (it would lead to a refusal), and the recipient's server refused
// the address with a permanent (5xx) reply. The delivering side
// (registered for Kind on the outbox at start-up) renders the template
// named by the message, plain text and HTML, builds links from the public
// URL, and hands the result to SMTP, or, with no SMTP configured, to the
// log stream.
//
// It imports nothing of this module but the ent client and the outbox.
package mail

import "time"

// Kind is the outbox kind of a mail row.
const Kind = "mail"

// Template names what a message says. Each has a plain-text and an HTML
// rendering.
type Template string

// The templates.
const (
	// VerifyEmail carries a link that verifies the address (Token).
	VerifyEmail Template = "verify-email"
	// AccountExists tells the owner of an address that someone tried to
	// register it again: sent instead of a verification mail, so that
	// sign-up does not reveal which addresses have accounts.
	AccountExists Template = "account-exists"
	// ResetPassword carries a single-use password-reset link (Token).
	ResetPassword Template = "reset-password"
	// PasswordChanged tells the owner the password was changed or reset.
	PasswordChanged Template = "password-changed"
	// NewDevice tells the owner of a sign-in from a device not seen before
	// (Data: "device", "address", "time").
	NewDevice Template = "new-device"
	// MFAChanged tells the owner two-factor sign-in was turned on or off
	// (Data: "state": "on" or "off").
	MFAChanged Template = "mfa-changed"
)

// Message is one mail as the outbox stores it (JSON).
type Message struct {
	// ID names the message, so a delivery repeated by the outbox (it
	// delivers at least once) is recognised and not sent twice.
	ID string `json:"id"`
	// To is the recipient's address.
	To string `json:"to"`
	// Name is the recipient's display name, if known.
	Name     string   `json:"name,omitempty"`
	Template Template `json:"template"`
	// Token is the secret a link carries (verification, reset), in the
	// clear: the database keeps only its hash, the outbox row is deleted
	// once the mail is sent.
	Token string `json:"token,omitempty"`
	// Expires is when Token stops working (zero: a mail without a link
	// that expires). A mail not sent by then is dropped, not sent.
	Expires time.Time `json:"expires,omitzero"`
	// Data fills the template's other blanks.
	Data map[string]string `json:"data,omitempty"`
}
