package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cheapArgon2 is a real but cheap argon2id cost, to keep tests fast.
var cheapArgon2 = Argon2Params{Memory: 1024, Time: 1, Threads: 1}

func mustHash(tb testing.TB, ps *Passwords, pw string) string {
	tb.Helper()
	h, err := ps.Hash(context.Background(), pw)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return h
}

func mustVerify(tb testing.TB, ps *Passwords, encoded, pw string) bool {
	tb.Helper()
	ok, err := ps.Verify(context.Background(), encoded, pw, nil)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return ok
}

func TestPasswordsRoundTrip(t *testing.T) {
	t.Parallel()
	ps := NewPasswords(cheapArgon2, PasswordOptions{})
	const pw = "correct horse battery staple"
	h := mustHash(t, ps, pw)
	if got, want := mustVerify(t, ps, h, pw), true; got != want {
		t.Errorf("Verify(right password)=%v, want %v", got, want)
	}
	if got, want := mustVerify(t, ps, h, "correct horse battery stapl"), false; got != want {
		t.Errorf("Verify(wrong password)=%v, want %v", got, want)
	}
	if got, want := mustVerify(t, ps, h, ""), false; got != want {
		t.Errorf("Verify(empty password)=%v, want %v", got, want)
	}
	if got, want := strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$"), true; got != want {
		t.Errorf("Hash=%q: PHC prefix present=%v, want %v", h, got, want)
	}
	if h2 := mustHash(t, ps, pw); h2 == h {
		t.Errorf("two hashes of one password are equal: salt is not fresh")
	} else if !mustVerify(t, ps, h2, pw) {
		t.Errorf("Verify(second hash)=false, want true")
	}
	// A hash made with other parameters still verifies: they are read from
	// the encoded string, so raising the cost breaks no stored hash.
	other := NewPasswords(Argon2Params{Memory: 2048, Time: 2, Threads: 2}, PasswordOptions{})
	if got, want := mustVerify(t, ps, mustHash(t, other, pw), pw), true; got != want {
		t.Errorf("Verify(hash with other params)=%v, want %v", got, want)
	}
}

// TestPasswordsNoTruncation checks that the whole password counts, unlike
// bcrypt, which ignores everything after 72 bytes.
func TestPasswordsNoTruncation(t *testing.T) {
	t.Parallel()
	ps := NewPasswords(cheapArgon2, PasswordOptions{})
	prefix := strings.Repeat("a", 72)
	a, b := prefix+"X", prefix+"Y"
	h := mustHash(t, ps, a)
	if got, want := mustVerify(t, ps, h, a), true; got != want {
		t.Errorf("Verify(a)=%v, want %v", got, want)
	}
	if got, want := mustVerify(t, ps, h, b), false; got != want {
		t.Errorf("Verify(b, equal to a in its first 72 bytes)=%v, want %v", got, want)
	}
	if got, want := mustVerify(t, ps, h, prefix), false; got != want {
		t.Errorf("Verify(first 72 bytes of a)=%v, want %v", got, want)
	}
}

func TestPasswordsMalformedHash(t *testing.T) {
	t.Parallel()
	ps := NewPasswords(cheapArgon2, PasswordOptions{})
	const pw = "correct horse battery staple"
	good := mustHash(t, ps, pw)
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }
	for _, tc := range []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", pw},
		{"dollars only", "$$$$$"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"argon2d", join("", "argon2d", parts[2], parts[3], parts[4], parts[5])},
		{"missing version", join("", parts[1], parts[3], parts[4], parts[5])},
		{"old version", join("", parts[1], "v=16", parts[3], parts[4], parts[5])},
		{"version not a number", join("", parts[1], "v=x", parts[3], parts[4], parts[5])},
		{"version with trailing text", join("", parts[1], "v=19x", parts[3], parts[4], parts[5])},
		{"version with leading zero", join("", parts[1], "v=019", parts[3], parts[4], parts[5])},
		{"missing params", join("", parts[1], parts[2], parts[4], parts[5])},
		{"params not numbers", join("", parts[1], parts[2], "m=a,t=b,p=c", parts[4], parts[5])},
		{"params in another order", join("", parts[1], parts[2], "t=1,m=1024,p=1", parts[4], parts[5])},
		{"params with trailing text", join("", parts[1], parts[2], parts[3]+",x", parts[4], parts[5])},
		{"params with a space", join("", parts[1], parts[2], "m= 1024,t=1,p=1", parts[4], parts[5])},
		{"zero time", join("", parts[1], parts[2], "m=1024,t=0,p=1", parts[4], parts[5])},
		{"zero threads", join("", parts[1], parts[2], "m=1024,t=1,p=0", parts[4], parts[5])},
		{"threads overflow", join("", parts[1], parts[2], "m=1024,t=1,p=257", parts[4], parts[5])},
		{"negative memory", join("", parts[1], parts[2], "m=-1024,t=1,p=1", parts[4], parts[5])},
		{"salt not base64", join("", parts[1], parts[2], parts[3], "!!!!", parts[5])},
		{"key not base64", join("", parts[1], parts[2], parts[3], parts[4], "!!!!")},
		{"padded key", join("", parts[1], parts[2], parts[3], parts[4], parts[5]+"=")},
		{"empty key", join("", parts[1], parts[2], parts[3], parts[4], "")},
		{"truncated key", join("", parts[1], parts[2], parts[3], parts[4], parts[5][:len(parts[5])-4])},
		{"other salt", join("", parts[1], parts[2], parts[3], "AAAAAAAAAAAAAAAAAAAAAA", parts[5])},
		{"extra part", good + "$x"},
		{"leading text", "x" + good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, want := mustVerify(t, ps, tc.encoded, pw), false; got != want {
				t.Errorf("Verify(%q)=%v, want %v", tc.encoded, got, want)
			}
		})
	}
}

func TestVerifyNone(t *testing.T) {
	t.Parallel()
	ps := NewPasswords(cheapArgon2, PasswordOptions{})
	if err := ps.VerifyNone(t.Context(), "any password", nil); err != nil { // must not panic
		t.Fatal(err)
	}
	if got, want := mustVerify(t, ps, ps.dummy, ""), false; got != want {
		t.Errorf("Verify(dummy, \"\")=%v, want %v", got, want)
	}
	// The dummy hash has the current cost, so it takes as long as a real one.
	if got, want := strings.HasPrefix(ps.dummy, "$argon2id$v=19$m=1024,t=1,p=1$"), true; got != want {
		t.Errorf("dummy=%q has current params=%v, want %v", ps.dummy, got, want)
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pw   string
		want error
	}{
		{"empty", "", ErrPasswordLength},
		{"7 ASCII", strings.Repeat("a", 7), ErrPasswordLength},
		{"8 ASCII", strings.Repeat("a", 8), nil},
		{"7 two-byte runes (14 bytes)", strings.Repeat("é", 7), ErrPasswordLength},
		{"8 two-byte runes", strings.Repeat("é", 8), nil},
		{"4 three-byte runes (12 bytes)", strings.Repeat("€", 4), ErrPasswordLength},
		{"7 four-byte runes (28 bytes)", strings.Repeat("🔑", 7), ErrPasswordLength},
		{"8 four-byte runes", strings.Repeat("🔑", 8), nil},
		{"128 ASCII", strings.Repeat("a", 128), nil},
		{"129 ASCII", strings.Repeat("a", 129), ErrPasswordLength},
		{"128 two-byte runes (256 bytes)", strings.Repeat("é", 128), nil},
		{"129 two-byte runes", strings.Repeat("é", 129), ErrPasswordLength},
		{"128 four-byte runes (512 bytes)", strings.Repeat("🔑", 128), nil},
		{"8 spaces", strings.Repeat(" ", 8), nil}, // no composition rules (NIST)
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, want := CheckPassword(tc.pw), tc.want; !errors.Is(got, want) {
				t.Errorf("CheckPassword(%d bytes)=%v, want %v", len(tc.pw), got, want)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"ann@example.com", "ann@example.com"},
		{"Ann@Example.COM", "ann@example.com"},
		{"  ann@example.com\t\n", "ann@example.com"},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got, want := NormalizeEmail(tc.in), tc.want; got != want {
				t.Errorf("NormalizeEmail(%q)=%q, want %q", tc.in, got, want)
			}
		})
	}
}

// BenchmarkLoginTiming shows that a login with an unknown e-mail
// (VerifyNone) costs the same as one with a wrong password (Verify against
// a stored hash), at the production cost. Compare the two ns/op; the test
// suite does not assert timings.
func BenchmarkLoginTiming(b *testing.B) {
	ps := NewPasswords(DefaultArgon2(), PasswordOptions{})
	stored := mustHash(b, ps, "the user's real password")
	b.Run("wrong password", func(b *testing.B) {
		for b.Loop() {
			if mustVerify(b, ps, stored, "a wrong password") {
				b.Fatal("wrong password verified")
			}
		}
	})
	b.Run("unknown email", func(b *testing.B) {
		for b.Loop() {
			if err := ps.VerifyNone(b.Context(), "a wrong password", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// busyPasswords returns a hasher with one slot, taken (by a Verify of
// stored) until release is called.
func busyPasswords(t *testing.T, wait time.Duration) (ps *Passwords, stored string, release func()) {
	t.Helper()
	var (
		armed   atomic.Bool
		holding = make(chan int)
		hold    = make(chan struct{})
	)
	ps = NewPasswords(cheapArgon2, PasswordOptions{Concurrency: 1, Wait: wait, OnAcquire: func(held int) {
		if armed.CompareAndSwap(true, false) {
			holding <- held
			<-hold
		}
	}})
	stored = mustHash(t, ps, "plum-tree-42")
	armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := ps.Verify(context.Background(), stored, "plum-tree-42", nil); err != nil {
			t.Errorf("Verify holding the slot: %v", err)
		}
	})
	if got, want := <-holding, 1; got != want {
		t.Fatalf("held=%d, want %d", got, want)
	}
	var once sync.Once
	release = func() { once.Do(func() { close(hold); wg.Wait() }) }
	t.Cleanup(release)
	return ps, stored, release
}

// At most Concurrency hashes run at once; Hash, Verify and VerifyNone wait
// for a slot, and give up with ErrBusy when none frees up in time. A check
// runs in the slot, before the hash, and its error stops the hash.
func TestPasswordsBounded(t *testing.T) {
	t.Parallel()
	ps, stored, release := busyPasswords(t, 20*time.Millisecond)
	if _, err := ps.Hash(t.Context(), "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash with every slot taken: err=%v, want ErrBusy", err)
	}
	if _, err := ps.Verify(t.Context(), stored, "x", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify with every slot taken: err=%v, want ErrBusy", err)
	}
	if err := ps.VerifyNone(t.Context(), "x", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyNone with every slot taken: err=%v, want ErrBusy", err)
	}
	release()
	// The gate is asked before hashing and told of failures only.
	stop := errors.New("stop")
	g := &fakeGate{check: stop}
	if _, err := ps.Verify(t.Context(), stored, "plum-tree-42", g); !errors.Is(err, stop) {
		t.Errorf("Verify with a refusing gate: err=%v, want the gate's", err)
	}
	g = &fakeGate{}
	if ok, err := ps.Verify(t.Context(), stored, "plum-tree-42", g); !ok || err != nil || g.failed != 0 {
		t.Errorf("right password: ok=%v err=%v failures told=%d, want true, nil, 0", ok, err, g.failed)
	}
	if err := ps.VerifyNone(t.Context(), "plum-tree-42", g); err != nil || g.failed != 1 {
		t.Errorf("VerifyNone: err=%v failures told=%d, want nil, 1", err, g.failed)
	}
	if !mustVerify(t, ps, stored, "plum-tree-42") {
		t.Error("the slot was not given back")
	}
}

// A request's deadline ends the wait for a slot when it comes first.
func TestPasswordsWaitEndsAtDeadline(t *testing.T) {
	t.Parallel()
	ps, stored, _ := busyPasswords(t, time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := ps.Verify(ctx, stored, "x", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify past the request's deadline: err=%v, want ErrBusy", err)
	}
}

// fakeGate refuses with check, if set, and counts the failures it is told.
type fakeGate struct {
	check  error
	failed int
}

func (g *fakeGate) Check(context.Context) error  { return g.check }
func (g *fakeGate) Failed(context.Context) error { g.failed++; return nil }
