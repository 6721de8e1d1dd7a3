package graph

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/authql/authql/graph/store"
)

// wantInputError fails tb unless err is an input error naming field.
func wantInputError(tb testing.TB, err error, field string) {
	tb.Helper()
	var in *inputError
	if !errors.As(err, &in) {
		tb.Fatalf("err=%v (%T), want an input error for %s", err, err, field)
	}
	if got, want := in.field, field; got != want {
		tb.Errorf("field=%v, want %v", got, want)
	}
}

// emailOfLen returns a valid address of exactly n bytes (n >= 70): a
// 64-byte local part and a domain of 63-byte labels.
func emailOfLen(tb testing.TB, n int) string {
	tb.Helper()
	local := strings.Repeat("a", 64)
	rest := n - len(local) - len("@") - len(".com")
	var labels []string
	for rest > 0 {
		l := min(rest, 63)
		if rest-l == 1 { // a label cannot be empty: leave two bytes
			l--
		}
		labels = append(labels, strings.Repeat("b", l))
		rest -= l + 1 // the dot after it
	}
	e := local + "@" + strings.Join(labels, ".") + ".com"
	if len(e) != n {
		tb.Fatalf("emailOfLen(%d) built %d bytes", n, len(e))
	}
	return e
}

func TestCheckEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		email string
		ok    bool
	}{
		{"simple", "ann@example.com", true},
		{"subdomain", "ann@mail.example.co.uk", true},
		{"plus tag", "ann+news@example.com", true},
		{"dots in local part", "ann.b.lee@example.com", true},
		{"apostrophe", "o'neil@example.org", true},
		{"digits", "1234@123.example", true},
		{"hyphenated domain", "ann@ex-ample.com", true},
		{"254 bytes", emailOfLen(t, 254), true},
		{"non-ASCII local part", "anné@example.com", true},

		{"empty", "", false},
		{"no @", "ann.example.com", false},
		{"two @", "ann@bob@example.com", false},
		{"only @", "@", false},
		{"no local part", "@example.com", false},
		{"no domain", "ann@", false},
		{"no dot in domain", "ann@localhost", false},
		{"leading dot in domain", "ann@.example.com", false},
		{"trailing dot in domain", "ann@example.com.", false},
		{"double dot in domain", "ann@example..com", false},
		{"leading dot in local part", ".ann@example.com", false},
		{"trailing dot in local part", "ann.@example.com", false},
		{"255 bytes", emailOfLen(t, 255), false},
		{"1000 bytes", strings.Repeat("a", 988) + "@example.com", false},
		{"display name", "Ann <ann@example.com>", false},
		{"quoted display name", `"Ann" <ann@example.com>`, false},
		{"angle brackets", "<ann@example.com>", false},
		{"comment", "ann@example.com (Ann)", false},
		{"quoted local part", `"ann"@example.com`, false},
		{"quoted local part with @", `"a@b"@example.com`, false},
		{"group", "friends: ann@example.com;", false},
		{"two addresses", "ann@example.com, bob@example.com", false},
		{"space in local part", "ann lee@example.com", false},
		{"space in domain", "ann@exa mple.com", false},
		{"leading space", " ann@example.com", false},
		{"trailing space", "ann@example.com ", false},
		{"tab", "ann\t@example.com", false},
		{"newline", "ann@example.com\n", false},
		{"header injection", "ann@example.com\r\nBcc: eve@example.com", false},
		{"non-breaking space", "ann\u00a0lee@example.com", false},
		{"em space", "ann\u2003@example.com", false},
		{"line separator", "ann\u2028@example.com", false},
		{"zero-width space", "ann\u200b@example.com", false},
		{"right-to-left override", "ann\u202e@example.com", false},
		{"C1 control", "ann\u0085@example.com", false},
		{"NUL", "ann\x00@example.com", false},
		{"invalid UTF-8", "ann\xff@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkEmail(tc.email)
			if tc.ok {
				if err != nil {
					t.Errorf("checkEmail(%q)=%v, want nil", tc.email, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkEmail(%q)=nil, want an error", tc.email)
			}
			wantInputError(t, err, "email")
		})
	}
}

func TestCheckNewPassword(t *testing.T) {
	t.Parallel()
	if err := checkNewPassword("newPassword", "long enough"); err != nil {
		t.Errorf("checkNewPassword(ok)=%v, want nil", err)
	}
	err := checkNewPassword("newPassword", "short")
	wantInputError(t, err, "newPassword")
	if got, want := err.Error(), "newPassword must be 8 to 128 characters"; got != want {
		t.Errorf("message=%q, want %q", got, want)
	}
}

func TestPageArgs(t *testing.T) {
	t.Parallel()
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name        string
		first, last *int
		wantFirst   *int
		wantLast    *int
		wantField   string // "" means accepted
	}{
		{"default", nil, nil, n(store.DefaultPageSize), nil, ""},
		{"first 0", n(0), nil, n(0), nil, ""},
		{"first 1", n(1), nil, n(1), nil, ""},
		{"first 100", n(100), nil, n(100), nil, ""},
		{"last 0", nil, n(0), nil, n(0), ""},
		{"last 100", nil, n(100), nil, n(100), ""},
		{"first 101", n(101), nil, nil, nil, "first"},
		{"first -1", n(-1), nil, nil, nil, "first"},
		{"first huge", n(1 << 62), nil, nil, nil, "first"},
		{"first most negative", n(-1 << 63), nil, nil, nil, "first"},
		{"last 101", nil, n(101), nil, nil, "last"},
		{"last -1", nil, n(-1), nil, nil, "last"},
		{"first and last", n(10), n(10), nil, nil, "last"},
		{"first and last 0", n(0), n(0), nil, nil, "last"},
		{"first bad and last", n(101), n(10), nil, nil, "first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			first, last, err := pageArgs(tc.first, tc.last)
			if tc.wantField != "" {
				wantInputError(t, err, tc.wantField)
				return
			}
			if err != nil {
				t.Fatalf("pageArgs=%v, want nil", err)
			}
			if got, want := fmtInt(first), fmtInt(tc.wantFirst); got != want {
				t.Errorf("first=%v, want %v", got, want)
			}
			if got, want := fmtInt(last), fmtInt(tc.wantLast); got != want {
				t.Errorf("last=%v, want %v", got, want)
			}
		})
	}
}

// fmtInt prints an optional int: "nil" or its value.
func fmtInt(p *int) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(*p)
}
