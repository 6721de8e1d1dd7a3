package graph

import "testing"

func TestSanitizeContent(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"id dropped", `<p id="currentUser">x</p>`, `<p>x</p>`},
		{"name dropped", `<map name="config"><area href="https://e.example/" alt="a"></map>y`, `y`},
		{"id on a link", `<a id="x" href="https://e.example/">l</a>`, `<a href="https://e.example/" rel="nofollow">l</a>`},
		{"https image kept", `<img src="https://img.example/a.png" alt="a">`, `<img src="https://img.example/a.png" alt="a">`},
		{"http image source dropped", `<img src="http://img.example/a.png" alt="a">`, `<img alt="a">`},
		{"relative image dropped", `<img src="/logout">`, ``},
		{"protocol-relative image dropped", `<img src="//img.example/a.png">`, ``},
		{"usemap dropped", `<img src="https://img.example/a.png" usemap="#m">`, `<img src="https://img.example/a.png">`},
		{"lang and title kept", `<span lang="en" title="t">s</span>`, `<span lang="en" title="t">s</span>`},
		{"table kept", `<table><tr><td>1</td></tr></table>`, `<table><tr><td>1</td></tr></table>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitizeContent(tc.in); got != tc.want {
				t.Errorf("sanitizeContent(%q)=%q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
