package graph

import (
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	const doc = "query Me { me { id } }"
	hash := documentHash(doc)
	for _, tc := range []struct {
		name, manifest, err string
	}{
		{"hex keys", `{"` + hash + `": "` + doc + `"}`, ""},
		{"sha256: keys", `{"sha256:` + hash + `": "` + doc + `"}`, ""},
		{"not an object", `["` + doc + `"]`, "not a JSON object"},
		{"upper-case hex", `{"` + strings.ToUpper(hash) + `": "` + doc + `"}`, "not a SHA-256 hash"},
		{"sha1 key", `{"0a4d55a8d778e5022fab701977c5d840bbc486d0": "` + doc + `"}`, "not a SHA-256 hash"},
		{"hash of another text", `{"` + hash + `": "query Me { me { id name } }"}`, "is not the SHA-256 of its document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := ParseManifest([]byte(tc.manifest))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err=%v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := docs[hash]; got != doc {
				t.Errorf("docs[hash]=%q, want %q", got, doc)
			}
		})
	}
}
