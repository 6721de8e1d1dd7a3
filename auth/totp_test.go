package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestSealerBindsOwnerAndKey(t *testing.T) {
	s, err := NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("JBSWY3DPEHPK3PXP", "US01")
	if strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatalf("sealed=%q holds the secret", sealed)
	}
	if got, err := s.Open(sealed, "US01"); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open=%q, %v; want the secret", got, err)
	}
	if _, err := s.Open(sealed, "US02"); err != ErrSealed {
		t.Fatalf("Open for another owner: err=%v, want ErrSealed", err)
	}
	other, _ := NewSealer([]byte("another key of thirty-two bytes!"))
	if _, err := other.Open(sealed, "US01"); err != ErrSealed {
		t.Fatalf("Open under another key: err=%v, want ErrSealed", err)
	}
	if s.Seal("x", "US01") == s.Seal("x", "US01") {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestMatchTOTP(t *testing.T) {
	e, err := NewEnrollment("authql", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(e.Secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		code  string
		after int64
		ok    bool
	}{
		{"current", code(now), 0, true},
		{"previous step (drift)", code(now.Add(-30 * time.Second)), 0, true},
		{"next step (drift)", code(now.Add(30 * time.Second)), 0, true},
		{"two steps old", code(now.Add(-60 * time.Second)), 0, false},
		{"already used step", code(now), TOTPStep(now), false},
		{"wrong", "000000", 0, code(now) == "000000"},
		{"not six digits", "12345", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := MatchTOTP(e.Secret, tc.code, now, tc.after); ok != tc.ok {
				t.Fatalf("ok=%v, want %v", ok, tc.ok)
			}
		})
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes := NewRecoveryCodes()
	if got, want := len(codes), RecoveryCodeCount; got != want {
		t.Fatalf("codes=%d, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Fatalf("code %q: want xxxxx-xxxxx, all different", c)
		}
		seen[c] = true
	}
	c := codes[0]
	typed := strings.ToUpper(strings.ReplaceAll(c, "-", " "))
	if HashRecoveryCode("US01", c) != HashRecoveryCode("US01", typed) {
		t.Fatal("a code typed in capitals with a space does not match")
	}
	if HashRecoveryCode("US01", c) == HashRecoveryCode("US02", c) {
		t.Fatal("the hash does not depend on the user")
	}
}

func TestAddressPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":          "203.0.113.0/24",
		"::ffff:203.0.113.9":   "203.0.113.0/24",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1::/48",
		"pipe":                 "",
	} {
		if got := AddressPrefix(in); got != want {
			t.Errorf("AddressPrefix(%q)=%q, want %q", in, got, want)
		}
	}
	if got := Device(strings.Repeat("é", 300)); len([]rune(got)) != 200 {
		t.Errorf("Device kept %d characters, want 200", len([]rune(got)))
	}
}
