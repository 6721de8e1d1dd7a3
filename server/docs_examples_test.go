package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The curl commands of the docs are what a newcomer types first: these
// tests run them, command by command, against a real server, and keep
// their account the one the playground's Register and Login tabs use.

// curlExample is a block of curl commands in the docs: the first sh block
// after a heading.
type curlExample struct {
	path, heading string
	// ops are the operations the block must show.
	ops []string
	// signIns is how often it gives the account's e-mail and password.
	signIns int
}

var curlExamples = []curlExample{
	// The README's first query.
	{"README.md", "## A first query", []string{"register", "me", "posts"}, 1},
	// The walkthrough from sign-up to logout.
	{"docs/API.md", "## Example with curl",
		[]string{"register", "login", "refresh", "logout", "me", "posts", "createPost", "updatePost", "deletePost"}, 2},
}

// block is the body of the first sh block after the example's heading.
func (x curlExample) block(t *testing.T) string {
	t.Helper()
	_, after, ok := strings.Cut(readDoc(t, x.path), "\n"+x.heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", x.path, x.heading)
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("%s: no sh block after %q", x.path, x.heading)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("%s: the curl block after %q does not end", x.path, x.heading)
	}
	return block
}

// shellStep is one step of the block: a command to run, or an assignment
// the reader makes by hand ("TOKEN=...   # accessToken from the answer"),
// which names the field of the last answer to take.
type shellStep struct {
	cmd           string
	name, comment string
}

var assignLine = regexp.MustCompile(`^([A-Z_]+)=\.\.\.\s*#\s*(.+)$`)

// shellSteps splits the block into steps. A command runs over several lines
// while a line ends in a backslash or a single-quoted string is open (the
// docs' commands quote with single quotes, and splice a variable in
// as '"$X"', which keeps their count even).
func shellSteps(block string) []shellStep {
	var steps []shellStep
	cur := ""
	for line := range strings.SplitSeq(block, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			if m := assignLine.FindStringSubmatch(trimmed); m != nil {
				steps = append(steps, shellStep{name: m[1], comment: m[2]})
				continue
			}
		}
		cur += line + "\n"
		if strings.Count(cur, "'")%2 == 0 && !strings.HasSuffix(trimmed, `\`) {
			steps = append(steps, shellStep{cmd: cur})
			cur = ""
		}
	}
	if cur != "" {
		steps = append(steps, shellStep{cmd: cur})
	}
	return steps
}

// fieldIn finds the first word of words that names a field, or a dotted
// path of fields, somewhere in v, and returns its string value.
func fieldIn(v any, words []string) (string, bool) {
	for _, w := range words {
		if s, ok := findPath(v, strings.Split(strings.Trim(w, ".,;:"), ".")); ok {
			return s, true
		}
	}
	return "", false
}

func findPath(v any, path []string) (string, bool) {
	switch v := v.(type) {
	case map[string]any:
		if s, ok := walk(v, path); ok {
			return s, true
		}
		for _, child := range v {
			if s, ok := findPath(child, path); ok {
				return s, true
			}
		}
	case []any:
		for _, child := range v {
			if s, ok := findPath(child, path); ok {
				return s, true
			}
		}
	}
	return "", false
}

func walk(v any, path []string) (string, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	s, ok := v.(string)
	return s, ok && s != ""
}

// TestDocsCurlExamples runs each block of curl commands in order, as a
// reader would (with bash and curl), against a real server: every answer
// must carry data and no error, and together they must cover the
// operations the block is there to show.
func TestDocsCurlExamples(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	for _, x := range curlExamples {
		t.Run(x.path, func(t *testing.T) {
			t.Parallel()
			runCurlExample(t, bash, x)
		})
	}
}

func runCurlExample(t *testing.T, bash string, x curlExample) {
	s := newTestEnv(t).start(t)
	host := strings.TrimPrefix(s.URL, "http://")
	// Nothing of the caller's environment: no proxy, no ~/.curlrc.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var last any
	ran := map[string]bool{}
	for _, st := range shellSteps(x.block(t)) {
		if st.name != "" {
			v, ok := fieldIn(last, strings.Fields(st.comment))
			if !ok {
				t.Fatalf("%s=... (# %s): no such field in the last answer %v", st.name, st.comment, last)
			}
			env = append(env, st.name+"="+v)
			continue
		}
		if !strings.Contains(st.cmd, "localhost:8080") {
			t.Fatalf("a command that does not call localhost:8080:\n%s", st.cmd)
		}
		cmd := exec.CommandContext(t.Context(), bash, "-c", strings.ReplaceAll(st.cmd, "localhost:8080", host))
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", st.cmd, err)
		}
		var answer struct {
			Data   map[string]any    `json:"data"`
			Errors []json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal(out, &answer); err != nil || len(answer.Errors) > 0 || len(answer.Data) == 0 {
			t.Fatalf("%s answered %s", st.cmd, out)
		}
		for op := range answer.Data {
			ran[op] = true
		}
		last = answer.Data
	}
	for _, op := range x.ops {
		if !ran[op] {
			t.Errorf("the curl commands of %s do not show %s", x.path, op)
		}
	}
}

// TestDocsExamplesUsePlaygroundAccount: a reader who registers with the
// docs' curl and then opens the playground can log in with its Login tab
// as it is: both use one e-mail and one password.
func TestDocsExamplesUsePlaygroundAccount(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("playground/src/examples.js")
	if err != nil {
		t.Fatal(err)
	}
	constant := func(name string) string {
		m := regexp.MustCompile(`(?m)^const ` + name + ` = '([^']+)';$`).FindSubmatch(js)
		if m == nil {
			t.Fatalf("playground/src/examples.js: no const %s", name)
		}
		return string(m[1])
	}
	want := map[string]string{"email": constant("email"), "password": constant("password")}
	for _, x := range curlExamples {
		block := x.block(t)
		for key, v := range want {
			got := regexp.MustCompile(`"`+key+`": "([^"]*)"`).FindAllStringSubmatch(block, -1)
			if len(got) < x.signIns {
				t.Errorf("the curl commands of %s give %q %d times, want %d (register, login)", x.path, key, len(got), x.signIns)
			}
			for _, g := range got {
				if g[1] != v {
					t.Errorf("the curl commands of %s use %s %q, the playground %q", x.path, key, g[1], v)
				}
			}
		}
	}
}
