package graph

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/graph/store"
)

// FuzzCheckEmail checks that checkEmail never panics, fails only with an
// input error for "email", and accepts only plain addresses. The resolver
// calls it on NormalizeEmail's output, so that path must also accept only
// addresses already in normal form.
func FuzzCheckEmail(f *testing.F) {
	for _, s := range []string{
		"ann@example.com", "Ann@Example.COM ", "a.b+tag@sub.example.co.uk",
		"anné@example.com", "ann@localhost", "ann@.example.com", "ann@example.com.",
		"Ann <ann@example.com>", `"a@b"@example.com`, "<ann@example.com>",
		"ann\u00a0@example.com", "ann\u200b@example.com", "ann lee@example.com",
		"ann@example.com (comment)", "ann@[127.0.0.1]", "ann@xn--bcher-kva.example",
		"\u212a@example.com", "\u0130@example.com", "", "@", "a@b.c",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAccepted := func(e string) bool {
			err := checkEmail(e)
			if err != nil {
				var in *inputError
				if !errors.As(err, &in) || in.field != "email" {
					t.Fatalf("checkEmail(%q)=%v (%T), want an input error for email", e, err, err)
				}
				return false
			}
			if got, want := strings.Count(e, "@"), 1; got != want {
				t.Errorf("checkEmail accepted %q with %d @, want %d", e, got, want)
			}
			if strings.ContainsFunc(e, unicode.IsSpace) {
				t.Errorf("checkEmail accepted %q with white space", e)
			}
			if len(e) > 254 {
				t.Errorf("checkEmail accepted %q of %d bytes, want at most 254", e, len(e))
			}
			if !utf8.ValidString(e) {
				t.Errorf("checkEmail accepted invalid UTF-8 %q", e)
			}
			local, domain, _ := strings.Cut(e, "@")
			if local == "" || !strings.Contains(domain, ".") {
				t.Errorf("checkEmail accepted %q: want a local part and a dotted domain", e)
			}
			return true
		}
		checkAccepted(s)
		if e := auth.NormalizeEmail(s); checkAccepted(e) {
			if got, want := auth.NormalizeEmail(e), e; got != want {
				t.Errorf("accepted %q is not in normal form: NormalizeEmail=%q", want, got)
			}
		}
	})
}

// FuzzPageArgs checks pageArgs against its specification: each of first
// and last, when given, is in [0, store.MaxPageSize]; not both; neither means
// first = store.DefaultPageSize.
func FuzzPageArgs(f *testing.F) {
	f.Add(false, 0, false, 0)
	f.Add(true, 0, false, 0)
	f.Add(true, store.MaxPageSize, false, 0)
	f.Add(true, store.MaxPageSize+1, false, 0)
	f.Add(false, 0, true, -1)
	f.Add(true, 10, true, 10)
	f.Add(true, -1<<63, true, 1<<63-1)
	f.Fuzz(func(t *testing.T, hasFirst bool, first int, hasLast bool, last int) {
		var fp, lp *int
		if hasFirst {
			fp = &first
		}
		if hasLast {
			lp = &last
		}
		inRange := func(v int) bool { return 0 <= v && v <= store.MaxPageSize }
		wantField := ""
		switch {
		case hasFirst && !inRange(first):
			wantField = "first"
		case hasLast && !inRange(last):
			wantField = "last"
		case hasFirst && hasLast:
			wantField = "last"
		}

		gotFirst, gotLast, err := pageArgs(fp, lp)
		if wantField != "" {
			var in *inputError
			if !errors.As(err, &in) || in.field != wantField {
				t.Fatalf("pageArgs(%v, %v)=%v, want an input error for %s", fmtInt(fp), fmtInt(lp), err, wantField)
			}
			if gotFirst != nil || gotLast != nil {
				t.Errorf("pageArgs returned %v, %v with an error", fmtInt(gotFirst), fmtInt(gotLast))
			}
			return
		}
		if err != nil {
			t.Fatalf("pageArgs(%v, %v)=%v, want nil", fmtInt(fp), fmtInt(lp), err)
		}
		wantFirst, wantLast := fp, lp
		if !hasFirst && !hasLast {
			d := store.DefaultPageSize
			wantFirst = &d
		}
		if got, want := fmtInt(gotFirst), fmtInt(wantFirst); got != want {
			t.Errorf("first=%v, want %v", got, want)
		}
		if got, want := fmtInt(gotLast), fmtInt(wantLast); got != want {
			t.Errorf("last=%v, want %v", got, want)
		}
	})
}
