package pulid

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// shapeOK is an independent statement of what Valid accepts.
func shapeOK(s string) bool {
	if len(s) != 28 {
		return false
	}
	for i := range 2 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	for i := 2; i < len(s); i++ {
		if !strings.ContainsRune(crockford, rune(s[i])) { // upper case only: one spelling per ID
			return false
		}
	}
	return s[2] <= '7' // 26 base32 characters hold 130 bits; a ULID has 128
}

// FuzzUnmarshalGQL checks that UnmarshalGQL never panics, accepts a string
// and an ID alike, and accepts exactly the well-formed IDs.
func FuzzUnmarshalGQL(f *testing.F) {
	for _, s := range []string{
		goodID, "us" + goodID[2:], goodID[:27], goodID + "0", goodID[:27] + "U",
		"US8" + goodID[3:], "ZZ7" + strings.Repeat("Z", 25), strings.ToLower(goodID),
		"", "US", strings.Repeat("é", 14),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fromString, fromID ID
		errString := fromString.UnmarshalGQL(s)
		errID := fromID.UnmarshalGQL(ID(s))
		if (errString == nil) != (errID == nil) {
			t.Fatalf("UnmarshalGQL(%q): string gives %v, ID gives %v", s, errString, errID)
		}
		if got, want := errString == nil, shapeOK(s); got != want {
			t.Fatalf("UnmarshalGQL(%q) accepted=%v, want %v (err %v)", s, got, want, errString)
		}
		if errString != nil {
			if fromString != "" || fromID != "" {
				t.Errorf("UnmarshalGQL(%q) set the ID despite an error", s)
			}
			// 64 input bytes, each quoted as at most \xNN, plus the sentence.
			if got, max := len(errString.Error()), 4*64+40; got > max {
				t.Errorf("error of %d bytes, want at most %d: the input is not truncated", got, max)
			}
			return
		}
		if !fromString.Valid() {
			t.Errorf("UnmarshalGQL accepted %q but Valid()=false", s)
		}
		if got, want := fromString, ID(s); got != want {
			t.Errorf("id=%q, want %q", got, want)
		}
		if got, want := fromID, ID(s); got != want {
			t.Errorf("id from ID=%q, want %q", got, want)
		}
	})
}

// FuzzMarshalGQL checks that an ID is written as the JSON string
// encoding/json writes, whatever it holds, and that a well-formed ID is
// written without allocating.
func FuzzMarshalGQL(f *testing.F) {
	for _, s := range []string{goodID, "", "a\"b", "\x00\xff<>&", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got bytes.Buffer
		ID(s).MarshalGQL(&got)
		want, _ := json.Marshal(s)
		if got.String() != string(want) {
			t.Fatalf("MarshalGQL(%q)=%s, want %s", s, got.String(), want)
		}
	})
}

func TestMarshalGQLAllocations(t *testing.T) {
	var buf bytes.Buffer
	buf.Grow(1024)
	id := ID(goodID)
	if n := testing.AllocsPerRun(100, func() { buf.Reset(); id.MarshalGQL(&buf) }); n != 0 {
		t.Errorf("MarshalGQL: %v allocations, want 0", n)
	}
}
