package store

import (
	"fmt"
	"time"

	"entgo.io/ent/dialect"
)

// SQLite has no time type: modernc's driver stores a time as the text of
// time.Time.String ("2006-01-02 15:04:05.999999999 -0700 MST") and, for a
// column declared DATETIME, parses it back on every read trying layout
// after layout with time.Parse, which costs more than reading the row. The
// statements the store writes itself read time columns as text instead
// (selected) and parse that one layout directly (scanTime).

// selected is how a statement of the store selects column c, scanned into
// dest: a time column (dest a scanTime) as text on SQLite, which scanTime
// parses; any other column, and any column elsewhere, as it is.
func selected(d, c string, dest any) string {
	if _, ok := dest.(scanTime); ok && d == dialect.SQLite {
		return "CAST(" + c + " AS TEXT)"
	}
	return c
}

// scanTime scans a time column into *t: a time.Time as a driver gives it,
// or text as SQLite holds it.
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*s.t = v
		return nil
	case string:
		t, err := parseTimeText(v)
		*s.t = t
		return err
	case []byte:
		t, err := parseTimeText(string(v))
		*s.t = t
		return err
	}
	return fmt.Errorf("cannot scan %T into a time", src)
}

// textLayouts are the layouts a time's text may have, the driver's own
// first: time.Time.String (without a monotonic reading), the layouts
// modernc's driver reads, and RFC 3339.
var textLayouts = []string{
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano,
}

// parseTimeText parses the text of a time: the driver's layout directly,
// anything else through time.Parse.
func parseTimeText(s string) (time.Time, error) {
	if t, ok := parseDriverTime(s); ok {
		return t, nil
	}
	for _, l := range textLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}

// parseDriverTime parses "2006-01-02 15:04:05[.fraction] -0700 MST", the
// text of time.Time.String. A zero offset is UTC; another is a fixed zone
// of that name, as time.Parse makes for a zone it does not know.
func parseDriverTime(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest, nsec := s[19:], 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 || i > 10 {
			return time.Time{}, false
		}
		f, _ := digits(rest[1:i])
		for range 10 - i {
			f *= 10
		}
		nsec, rest = f, rest[i:]
	}
	// " -0700 MST"
	if len(rest) < 7 || rest[0] != ' ' || (rest[1] != '+' && rest[1] != '-') || len(rest) > 7 && rest[6] != ' ' {
		return time.Time{}, false
	}
	oh, okh := digits(rest[2:4])
	om, okm := digits(rest[4:6])
	if !okh || !okm {
		return time.Time{}, false
	}
	off := (oh*60 + om) * 60
	if rest[1] == '-' {
		off = -off
	}
	zone := ""
	if len(rest) > 7 {
		zone = rest[7:]
	}
	loc := time.UTC
	if off != 0 || zone != "UTC" {
		loc = time.FixedZone(zone, off)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 31 February and the like
		return time.Time{}, false
	}
	return t, true
}

// digits parses a run of ASCII digits.
func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
