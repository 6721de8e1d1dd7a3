package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authql/authql/ent/schema/pulid"
)

// FuzzVerify checks that Verify never panics and accepts nothing but the
// tokens this setup minted, byte for byte. The clock, keys and claims are
// fixed, so every run (and every fuzz worker) mints the same tokens and the
// committed corpus stays meaningful.
func FuzzVerify(f *testing.F) {
	clock := &testClock{t: testT0.Add(time.Minute)}
	cfg := testTokenConfig(clock)
	edKey := Ed25519PublicKey(testEdKey.Public().(ed25519.PublicKey))
	cfg.Verify = []Key{edKey}
	tk := mustNewTokens(f, cfg)

	hs := jwt.SigningMethodHS256
	claims := testClaims(testT0)
	hsToken := mustSign(f, hs, testSecret, nil, claims)
	edToken := mustSign(f, jwt.SigningMethodEdDSA, testEdKey, map[string]any{"kid": edKey.ID}, claims)
	// Not tk.Issue: its random jti would differ in every fuzz worker
	// process, and each process runs this setup.
	minted := map[string]bool{hsToken: true, edToken: true}
	for tok := range minted {
		if _, err := tk.Verify(tok); err != nil {
			f.Fatalf("Verify(minted token): %v", err)
		}
	}

	for tok := range minted {
		f.Add(tok)
		p := strings.Split(tok, ".")
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
		f.Add(tok[:len(tok)-2] + "\n" + tok[len(tok)-2:])
		f.Add(p[1] + "." + p[0] + "." + p[2])
		f.Add(p[0] + "." + p[1] + ".")
		f.Add(p[0] + "." + p[1])
		f.Add(strings.ToUpper(tok))
	}
	f.Add(mustSign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, claims))
	f.Add(mustSign(f, jwt.SigningMethodHS512, testSecret, nil, claims))
	f.Add(mustSign(f, jwt.SigningMethodEdDSA, testEdKey, nil, claims))
	f.Add(mustSign(f, hs, []byte(testEdKey.Public().(ed25519.PublicKey)), map[string]any{"kid": edKey.ID}, claims))
	f.Add(mustSign(f, hs, testSecret, map[string]any{"typ": "JWT"}, claims))
	f.Add(mustSign(f, hs, testSecret, map[string]any{"jku": "https://evil.example/"}, claims))
	f.Add(mustSign(f, hs, testSecret, map[string]any{"crit": []string{"exp"}}, claims))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add(strings.Repeat("A", maxTokenLen+1))

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := tk.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Verify(%q)=%v, want %v or %v", token, err, ErrInvalidToken, ErrTokenExpired)
			}
			if claims != nil {
				t.Fatalf("Verify(%q) returned claims with error %v", token, err)
			}
			return
		}
		if !minted[token] {
			t.Fatalf("Verify(%q) accepted a token the setup never minted", token)
		}
		if claims == nil || claims.Subject != string(testUserID) || claims.SessionID != testSession {
			t.Fatalf("Verify(%q)=%+v, want the minted claims", token, claims)
		}
	})
}

// FuzzParseRefreshToken checks that parseRefreshToken never panics and
// accepts only strings of the exact documented shape.
func FuzzParseRefreshToken(f *testing.F) {
	fresh := newRefreshToken(testUserID, testSession).raw
	for _, s := range []string{testRefresh, fresh} {
		f.Add(s)
		f.Add(s + "=")
		f.Add(s[:len(s)-1])
		f.Add(s[:len(s)-5] + "\n" + s[len(s)-5:])
		f.Add(strings.Replace(s, ".SE", ".US", 1))
		f.Add(strings.Replace(s, "rt.", "RT.", 1))
		f.Add(s + "." + testRefreshSecret)
	}
	f.Add("")
	f.Add("rt.")
	f.Add("rt...")
	f.Add("rt." + strings.Repeat("A", 300))

	const (
		idLen     = 28 // two-letter prefix and a 26-character ULID
		secretB64 = 43 // 32 bytes, base64url without padding
	)
	f.Fuzz(func(t *testing.T, s string) {
		rt, err := parseRefreshToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRefreshToken) {
				t.Fatalf("parseRefreshToken(%q)=%v, want %v", s, err, ErrInvalidRefreshToken)
			}
			return
		}
		parts := strings.Split(s, ".")
		if got, want := len(parts), 4; got != want {
			t.Fatalf("accepted %q with %d parts, want %d", s, got, want)
		}
		if got, want := parts[0]+".", refreshPrefix; got != want {
			t.Errorf("accepted %q with prefix %q, want %q", s, got, want)
		}
		if got, want := len(parts[1]), idLen; got != want {
			t.Errorf("accepted %q: len(user id)=%d, want %d", s, got, want)
		}
		if got, want := len(parts[2]), idLen; got != want || !strings.HasPrefix(parts[2], pulid.SessionPrefix) {
			t.Errorf("accepted %q: session id %q, want %d characters starting %s", s, parts[2], want, pulid.SessionPrefix)
		}
		if got, want := len(parts[3]), secretB64; got != want {
			t.Errorf("accepted %q: len(secret)=%d, want %d", s, got, want)
		}
		secret, err := base64.RawURLEncoding.DecodeString(parts[3])
		if err != nil || base64.RawURLEncoding.EncodeToString(secret) != parts[3] {
			t.Errorf("accepted %q: secret is not canonical base64url", s)
		}
		again := refreshPrefix + string(rt.userID) + "." + rt.sessionID + "." + parts[3]
		if got, want := again, s; got != want {
			t.Errorf("re-serialised=%q, want %q", got, want)
		}
		if got, want := rt.raw, s; got != want {
			t.Errorf("raw=%q, want %q", got, want)
		}
	})
}

// FuzzOpenIssued checks that openIssued never panics and never opens a
// ciphertext it did not seal: no input here was sealed under parent.
func FuzzOpenIssued(f *testing.F) {
	parent := mustParseRefresh(f, testRefresh)
	other := newRefreshToken(testUserID, testSession)
	p := issued{AccessToken: "a.b.c", RefreshToken: testRefresh, ExpiresAt: testT0.Unix()}
	underOther, err := sealIssued(other, p)
	if err != nil {
		f.Fatalf("sealIssued: %v", err)
	}
	underParent, err := sealIssued(parent, p)
	if err != nil {
		f.Fatalf("sealIssued: %v", err)
	}
	b, _ := base64.RawStdEncoding.DecodeString(underParent)
	for _, i := range []int{0, 11, 12, len(b) / 2, len(b) - 1} {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		f.Add(base64.RawStdEncoding.EncodeToString(c))
	}
	f.Add(underOther)
	f.Add(underParent[:len(underParent)-1])
	f.Add(base64.RawStdEncoding.EncodeToString(b[:12]))
	f.Add(base64.RawStdEncoding.EncodeToString(make([]byte, 12+16)))
	f.Add("")
	f.Add("====")

	f.Fuzz(func(t *testing.T, sealed string) {
		got, err := openIssued(parent, sealed)
		if err == nil {
			t.Fatalf("openIssued(%q)=%+v, want an error", sealed, got)
		}
	})
}
