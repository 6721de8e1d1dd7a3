package model

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// MarshalString must write exactly what encoding/json writes (with its
// default HTML escaping), for any input.
func FuzzMarshalString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<script>&</script>", "tab\tnew\nline\r",
		"\x00\x1f", "é漢字😀", "\u2028\u2029", "bad \xff utf8 \xc3", strings.Repeat("a<", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got bytes.Buffer
		MarshalString(s).MarshalGQL(&got)
		want, _ := json.Marshal(s)
		if got.String() != string(want) {
			t.Fatalf("MarshalString(%q)=%s, want %s", s, got.String(), want)
		}
		var plain bytes.Buffer // through a writer without WriteString
		MarshalString(s).MarshalGQL(writerOnly{&plain})
		if plain.String() != string(want) {
			t.Fatalf("MarshalString(%q) to an io.Writer=%s, want %s", s, plain.String(), want)
		}
	})
}

type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

// Writing a string into the response buffer allocates nothing, escapes or
// not: a response is mostly strings.
func TestWriteStringAllocations(t *testing.T) {
	var buf bytes.Buffer
	for _, s := range []string{"someone@example.com", "<b>\"quoted\"</b>\n\u2028 \xff"} {
		buf.Grow(1024)
		if n := testing.AllocsPerRun(100, func() { buf.Reset(); writeString(&buf, s) }); n != 0 {
			t.Errorf("writeString(%q): %v allocations, want 0", s, n)
		}
	}
}
