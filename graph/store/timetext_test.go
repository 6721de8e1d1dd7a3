package store

import (
	"testing"
	"time"
)

// The text the SQLite driver writes for a time parses back to the same
// instant, directly or through time.Parse; anything else is an error.
func TestParseTimeText(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, want := range []time.Time{
		time.Date(2026, 11, 29, 19, 12, 55, 891725000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.UTC),
		time.Date(2026, 6, 1, 8, 0, 0, 500, cet),
		time.Date(2026, 6, 1, 8, 0, 0, 0, time.FixedZone("", -(5*3600+30*60))),
	} {
		for _, text := range []string{want.String(), want.Format(time.RFC3339Nano), want.Format("2006-01-02 15:04:05.999999999-07:00")} {
			got, err := parseTimeText(text)
			if err != nil || !got.Equal(want) {
				t.Errorf("parseTimeText(%q) = %v, %v; want %v", text, got, err, want)
			}
			_, offGot := got.Zone()
			_, offWant := want.Zone()
			if offGot != offWant {
				t.Errorf("parseTimeText(%q): offset %d, want %d", text, offGot, offWant)
			}
		}
	}
	if got, ok := parseDriverTime(time.Date(2026, 11, 29, 19, 12, 55, 891725000, time.UTC).String()); !ok || got.Location() != time.UTC {
		t.Errorf("the driver's UTC text did not take the direct path to UTC: %v, %v", got, ok)
	}
	for _, bad := range []string{"", "yesterday", "2026-02-31 10:00:00 +0000 UTC", "2026-13-01 10:00:00 +0000 UTC",
		"2026-11-29 25:00:00 +0000 UTC", "2026-11-29 10:00:00 0000 UTC"} {
		if got, err := parseTimeText(bad); err == nil {
			t.Errorf("parseTimeText(%q) = %v, want an error", bad, got)
		}
	}
}

func BenchmarkParseTimeText(b *testing.B) {
	s := time.Date(2026, 11, 29, 19, 12, 55, 891725000, time.UTC).String()
	for b.Loop() {
		if _, err := parseTimeText(s); err != nil {
			b.Fatal(err)
		}
	}
}
