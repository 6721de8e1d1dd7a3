package pulid

import (
	"strings"
	"testing"
	"time"
)

// goodID is a well-formed ID.
const goodID = "US01HZX3W6Z3Q2M1D9Y7TQ4K5B8V"

func TestValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		id   string
		want bool
	}{
		{"good", goodID, true},
		{"new", string(New("PO", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))), true},
		{"largest ULID", "ZZ7" + strings.Repeat("Z", 25), true},
		{"empty", "", false},
		{"prefix only", "US", false},
		{"bare ULID", goodID[2:], false},
		{"lower-case prefix", "us" + goodID[2:], false},
		{"lower-case ULID", "US" + strings.ToLower(goodID[2:]), false},
		{"mixed-case prefix", "Us" + goodID[2:], false},
		{"digit in prefix", "U1" + goodID[2:], false},
		{"short", goodID[:len(goodID)-1], false},
		{"long", goodID + "0", false},
		{"one-letter prefix", "U" + goodID[2:] + "0", false},
		{"three-letter prefix", "USR" + goodID[3:], false},
		{"I in ULID", goodID[:27] + "I", false},
		{"L in ULID", goodID[:27] + "L", false},
		{"O in ULID", goodID[:27] + "O", false},
		{"U in ULID", goodID[:27] + "U", false},
		{"punctuation in ULID", goodID[:27] + "-", false},
		{"ULID overflow", "US8" + goodID[3:], false},
		{"multi-byte rune", "US" + goodID[2:26] + "é", false},
		{"NUL", goodID[:27] + "\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, want := ID(tc.id).Valid(), tc.want; got != want {
				t.Errorf("Valid(%q)=%v, want %v", tc.id, got, want)
			}
		})
	}
}

func TestUnmarshalGQL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   any
		want ID // "" means rejected
	}{
		{"good string", goodID, goodID},
		{"good ID", ID(goodID), goodID},
		{"lower-case prefix", "us" + goodID[2:], ""},
		{"short", goodID[:27], ""},
		{"long", goodID + "0", ""},
		{"invalid ULID character", goodID[:27] + "U", ""},
		{"empty", "", ""},
		{"invalid ID", ID("US123"), ""},
		{"int", 42, ""},
		{"float", 4.2, ""},
		{"nil", nil, ""},
		{"bytes", []byte(goodID), ""},
		{"string pointer", new(goodID), ""},
		{"bool", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const before = ID("unchanged")
			id := before
			err := id.UnmarshalGQL(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("UnmarshalGQL(%#v)=nil error, want rejection", tc.in)
				}
				if got, want := id, before; got != want {
					t.Errorf("id=%v after a rejection, want %v", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalGQL(%#v)=%v", tc.in, err)
			}
			if got, want := id, tc.want; got != want {
				t.Errorf("id=%v, want %v", got, want)
			}
		})
	}
}

// TestUnmarshalGQLErrorTruncates checks that a huge input is not echoed
// whole into the error message a client sees.
func TestUnmarshalGQLErrorTruncates(t *testing.T) {
	t.Parallel()
	var id ID
	err := id.UnmarshalGQL(strings.Repeat("A", 10_000))
	if err == nil {
		t.Fatal("UnmarshalGQL=nil error, want rejection")
	}
	if got, max := len(err.Error()), 100; got > max {
		t.Errorf("len(error)=%v, want at most %v", got, max)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	if got, want := ID(goodID).Prefix(), "US"; got != want {
		t.Errorf("Prefix=%v, want %v", got, want)
	}
	if got, want := ID("us"+goodID[2:]).Prefix(), ""; got != want {
		t.Errorf("Prefix(invalid)=%v, want %v", got, want)
	}
}

func TestNewMonotonic(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := New("US", at)
	for range 100 {
		id := New("US", at)
		if id <= prev {
			t.Fatalf("New=%v after %v, want a larger ID", id, prev)
		}
		prev = id
	}
}
