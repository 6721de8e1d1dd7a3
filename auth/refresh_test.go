package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// testRefreshSecret is a fixed, well-formed secret part (43 characters).
var testRefreshSecret = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("s", secretLen)))

// testRefresh is a fixed, well-formed refresh token.
var testRefresh = refreshPrefix + string(testUserID) + "." + testSession + "." + testRefreshSecret

func mustParseRefresh(tb testing.TB, raw string) refreshToken {
	tb.Helper()
	rt, err := parseRefreshToken(raw)
	if err != nil {
		tb.Fatalf("parseRefreshToken(%q): %v", raw, err)
	}
	return rt
}

func TestParseRefreshToken(t *testing.T) {
	t.Parallel()
	fresh := newRefreshToken(testUserID, newSessionID(testT0))
	for _, raw := range []string{fresh.raw, testRefresh} {
		rt := mustParseRefresh(t, raw)
		if got, want := rt.raw, raw; got != want {
			t.Errorf("raw=%v, want %v", got, want)
		}
	}
	rt := mustParseRefresh(t, fresh.raw)
	if got, want := rt.userID, testUserID; got != want {
		t.Errorf("userID=%v, want %v", got, want)
	}
	if got, want := rt.sessionID, fresh.sessionID; got != want {
		t.Errorf("sessionID=%v, want %v", got, want)
	}
	if got, want := len(fresh.raw), len(testRefresh); got != want {
		t.Errorf("len(newRefreshToken)=%v, want %v", got, want)
	}
	if fresh.raw == newRefreshToken(testUserID, fresh.sessionID).raw {
		t.Errorf("two refresh tokens for one session are identical: the secret is not fresh")
	}
}

func TestParseRefreshTokenRejects(t *testing.T) {
	t.Parallel()
	uid, sid, secret := string(testUserID), testSession, testRefreshSecret
	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"prefix only", "rt."},
		{"no prefix", uid + "." + sid + "." + secret},
		{"wrong prefix", "at." + uid + "." + sid + "." + secret},
		{"upper-case prefix", "RT." + uid + "." + sid + "." + secret},
		{"too few parts", "rt." + uid + "." + secret},
		{"too many parts", "rt." + uid + "." + sid + "." + secret + "." + secret},
		{"empty part", "rt." + uid + ".." + secret},
		{"bad user pulid", "rt.US01HZX3W6Z3Q2M1D9Y7TQ4K5B8." + sid + "." + secret},
		{"lower-case user prefix", "rt.us" + uid[2:] + "." + sid + "." + secret},
		{"user id with invalid ULID character", "rt.US01HZX3W6Z3Q2M1D9Y7TQ4K5B8U." + sid + "." + secret},
		{"session id without SE prefix", "rt." + uid + "." + uid + "." + secret},
		{"session id with lower-case se prefix", "rt." + uid + ".se" + sid[2:] + "." + secret},
		{"bad session pulid", "rt." + uid + ".SE123." + secret},
		{"secret too short", "rt." + uid + "." + sid + "." + secret[:42]},
		{"secret too long", "rt." + uid + "." + sid + "." + secret + "A"},
		{"secret of 31 bytes", "rt." + uid + "." + sid + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 31))},
		{"secret of 33 bytes", "rt." + uid + "." + sid + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 33))},
		{"secret in standard base64", "rt." + uid + "." + sid + "." + strings.ReplaceAll(secret[:42], "c", "+") + "/"},
		{"padded secret", "rt." + uid + "." + sid + "." + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("s", secretLen)))},
		{"non-base64url secret", "rt." + uid + "." + sid + "." + secret[:42] + "!"},
		{"secret with non-zero trailing bits", "rt." + uid + "." + sid + "." + secret[:42] + "d"},
		{"secret with a line feed", "rt." + uid + "." + sid + "." + secret[:20] + "\n" + secret[20:]},
		{"secret with a carriage return", "rt." + uid + "." + sid + "." + secret + "\r"},
		{"trailing data", testRefresh + "x"},
		{"trailing dot", testRefresh + "."},
		{"trailing space", testRefresh + " "},
		{"leading space", " " + testRefresh},
		{"longer than 256 bytes", testRefresh + strings.Repeat("A", 257-len(testRefresh))},
		{"a JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseRefreshToken(tc.raw)
			if got, want := err, ErrInvalidRefreshToken; !errors.Is(got, want) {
				t.Errorf("parseRefreshToken(%q)=%v, want %v", tc.raw, got, want)
			}
		})
	}
}

func TestRefreshHash(t *testing.T) {
	t.Parallel()
	a := mustParseRefresh(t, testRefresh)
	if got, want := a.hash(), mustParseRefresh(t, testRefresh).hash(); got != want {
		t.Errorf("hash=%v, want %v (same token)", got, want)
	}
	if got, want := len(a.hash()), 64; got != want {
		t.Errorf("len(hash)=%v, want %v", got, want)
	}
	if strings.Contains(a.hash(), testRefreshSecret) {
		t.Errorf("hash %v contains the secret", a.hash())
	}
	b := newRefreshToken(testUserID, testSession)
	if a.hash() == b.hash() {
		t.Errorf("two tokens have the same hash %v", a.hash())
	}
}

func TestSealOpenIssued(t *testing.T) {
	t.Parallel()
	parent := mustParseRefresh(t, testRefresh)
	want := issued{AccessToken: "a.b.c", RefreshToken: newRefreshToken(testUserID, testSession).raw, ExpiresAt: testT0.Unix()}
	sealed, err := sealIssued(parent, want)
	if err != nil {
		t.Fatalf("sealIssued: %v", err)
	}
	if strings.Contains(sealed, want.RefreshToken) || strings.Contains(sealed, want.AccessToken) {
		t.Fatalf("sealed pair %q contains a token in clear", sealed)
	}

	t.Run("round trip", func(t *testing.T) {
		got, err := openIssued(parent, sealed)
		if err != nil {
			t.Fatalf("openIssued: %v", err)
		}
		if got != want {
			t.Errorf("openIssued=%+v, want %+v", got, want)
		}
	})
	t.Run("fresh nonce", func(t *testing.T) {
		again, err := sealIssued(parent, want)
		if err != nil {
			t.Fatalf("sealIssued: %v", err)
		}
		if again == sealed {
			t.Errorf("sealing twice gave the same ciphertext: nonce reused")
		}
	})
	t.Run("other parent", func(t *testing.T) {
		other := newRefreshToken(testUserID, testSession)
		if _, err := openIssued(other, sealed); err == nil {
			t.Errorf("openIssued with another parent=nil error, want failure")
		}
	})

	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		t.Fatalf("decode sealed: %v", err)
	}
	reencode := func(f func(b []byte) []byte) string {
		c := append([]byte(nil), b...)
		return base64.RawStdEncoding.EncodeToString(f(c))
	}
	for _, tc := range []struct {
		name   string
		sealed string
	}{
		{"empty", ""},
		{"not base64", "!!!!"},
		{"padded", sealed + "=="[:(4-len(sealed)%4)%4] + "="},
		{"nonce only", reencode(func(c []byte) []byte { return c[:12] })},
		{"shorter than a nonce", reencode(func(c []byte) []byte { return c[:11] })},
		{"flipped nonce bit", reencode(func(c []byte) []byte { c[0] ^= 1; return c })},
		{"flipped ciphertext bit", reencode(func(c []byte) []byte { c[12] ^= 0x80; return c })},
		{"flipped tag bit", reencode(func(c []byte) []byte { c[len(c)-1] ^= 1; return c })},
		{"truncated tag", reencode(func(c []byte) []byte { return c[:len(c)-1] })},
		{"appended byte", reencode(func(c []byte) []byte { return append(c, 0) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := openIssued(parent, tc.sealed); err == nil {
				t.Errorf("openIssued(%q)=nil error, want failure", tc.sealed)
			}
		})
	}
}
