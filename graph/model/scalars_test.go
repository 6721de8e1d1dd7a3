package model

import (
	"bytes"
	"encoding/json"
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
	})
}
