// Package pulid implements prefixed ULIDs: the identifiers of every entity
// this server stores and the GraphQL ID values clients see.
//
// An ID is a two-letter type prefix followed by a 26-character ULID, for
// example "US01HZX3W6Z3Q2M1D9Y7TQ4K5B8V". The prefix lets the Node resolver
// find the table without a lookup; the ULID is generated in the process (no
// sequence round trip), sorts by creation time, and carries 80 random bits,
// so IDs cannot be enumerated.
//
// It imports nothing of this module, so that every package may import it:
// ent's schemas and generated code, auth, graph/store, graph and server.
package pulid

import (
	"crypto/rand"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ID is a prefixed ULID.
type ID string

// The type prefixes of the IDs this server issues, one per kind of object.
// Stored rows, tokens and clients' copies carry them: never change or
// reuse one.
const (
	UserPrefix    = "US" // users (ent schema User)
	PostPrefix    = "PO" // posts (ent schema Post)
	SessionPrefix = "SE" // sessions (kept in Redis by auth)
	EventPrefix   = "EV" // security events (ent schema SecurityEvent)
)

// prefixLen is the length of the type prefix of every ID.
const prefixLen = 2

// ulidLen is the length of the ULID part of every ID.
const ulidLen = ulid.EncodedSize

// entropy is a monotonic source guarded by a mutex: ulid.Monotonic is not
// safe for concurrent use.
var entropy = struct {
	sync.Mutex
	src *ulid.MonotonicEntropy
}{src: ulid.Monotonic(rand.Reader, 0)}

// New returns a new ID with the given two-letter prefix for time t.
func New(prefix string, t time.Time) ID {
	entropy.Lock()
	u := ulid.MustNew(ulid.Timestamp(t), entropy.src)
	entropy.Unlock()
	return ID(prefix + u.String())
}

// Prefix returns the type prefix of the ID, or "" if the ID is malformed.
func (id ID) Prefix() string {
	if !id.Valid() {
		return ""
	}
	return string(id[:prefixLen])
}

// Valid reports whether the ID has the shape of a PULID: a prefix of two
// upper-case letters and a well-formed ULID. It says nothing about whether
// the entity exists.
func (id ID) Valid() bool {
	if len(id) != prefixLen+ulidLen {
		return false
	}
	for i := 0; i < prefixLen; i++ {
		if id[i] < 'A' || id[i] > 'Z' {
			return false
		}
	}
	// Upper case only: ULIDs are printed upper case, and a second spelling
	// of the same ID would slip past every equality check.
	for i := prefixLen; i < len(id); i++ {
		if !strings.ContainsRune(crockford, rune(id[i])) {
			return false
		}
	}
	_, err := ulid.ParseStrict(string(id[prefixLen:]))
	return err == nil
}

// crockford is the alphabet of a printed ULID.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// UnmarshalGQL implements graphql.Unmarshaler. Malformed IDs are rejected
// here, so resolvers never see them and the client gets BAD_USER_INPUT.
func (id *ID) UnmarshalGQL(v any) error {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case ID: // the generated Noder passes IDs through UnmarshalGQL
		s = string(v)
	default:
		return fmt.Errorf("ID must be a string")
	}
	if !ID(s).Valid() {
		return fmt.Errorf("%q is not a valid ID", truncate(s, 64))
	}
	*id = ID(s)
	return nil
}

// MarshalGQL implements graphql.Marshaler. An ID of letters and digits
// (every ID we make) needs no escaping; anything else is quoted.
func (id ID) MarshalGQL(w io.Writer) {
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			b, _ := json.Marshal(string(id)) // never fails for a string
			_, _ = w.Write(b)
			return
		}
	}
	// Three writes rather than one built slice: gqlgen's response buffer
	// takes strings without allocating.
	_, _ = io.WriteString(w, `"`)
	_, _ = io.WriteString(w, string(id))
	_, _ = io.WriteString(w, `"`)
}

// Scan implements sql.Scanner.
func (id *ID) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return fmt.Errorf("pulid: cannot scan NULL into ID")
	case string:
		*id = ID(v)
	case []byte:
		*id = ID(v)
	case ID:
		*id = v
	default:
		return fmt.Errorf("pulid: cannot scan %T into ID", src)
	}
	return nil
}

// Value implements driver.Valuer.
func (id ID) Value() (driver.Value, error) { return string(id), nil }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
