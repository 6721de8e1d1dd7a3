package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The README's "Example with curl" block is what a newcomer types first:
// these tests run it, command by command, against a real server, and keep
// its account the one the playground's Register and Login tabs use.

// readmeCurlBlock is the body of the first sh block after "Example with curl".
func readmeCurlBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "Example with curl")
	if !ok {
		t.Fatal(`README.md has no "Example with curl"`)
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal(`README.md: no sh block after "Example with curl"`)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("README.md: the curl block does not end")
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
// README's commands quote with single quotes, and splice a variable in
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

// TestREADMECurlExamples runs the README's curl commands in order, as a
// reader would (with bash and curl), against a real server: every answer
// must carry data and no error, and together they must cover the
// operations a newcomer needs.
func TestREADMECurlExamples(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	s := newTestEnv(t).start(t)
	host := strings.TrimPrefix(s.URL, "http://")
	// Nothing of the caller's environment: no proxy, no ~/.curlrc.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var last any
	ran := map[string]bool{}
	for _, st := range shellSteps(readmeCurlBlock(t)) {
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
	for _, op := range []string{"register", "login", "refresh", "logout", "me", "posts", "createPost", "updatePost", "deletePost"} {
		if !ran[op] {
			t.Errorf("the README's curl examples do not show %s", op)
		}
	}
}

// TestREADMEExamplesUsePlaygroundAccount: a reader who registers with the
// README's curl and then opens the playground can log in with its Login
// tab as it is: both use one e-mail and one password.
func TestREADMEExamplesUsePlaygroundAccount(t *testing.T) {
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
	block := readmeCurlBlock(t)
	for key, v := range want {
		got := regexp.MustCompile(`"`+key+`": "([^"]*)"`).FindAllStringSubmatch(block, -1)
		if len(got) < 2 {
			t.Errorf("the README's curl examples give %q %d times, want it in register and login", key, len(got))
		}
		for _, g := range got {
			if g[1] != v {
				t.Errorf("the README's curl examples use %s %q, the playground %q", key, g[1], v)
			}
		}
	}
}
