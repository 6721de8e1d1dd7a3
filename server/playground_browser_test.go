//go:build browser

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestPlaygroundBrowser opens the playground in headless Chromium, served by
// a real instance with the page's own CSP, and uses it as a person would:
// the headers editor is open with the placeholder, Register runs and its
// token lands in the Authorization header, Me then works from another tab,
// and the settings dialog and the docs open. Any CSP violation, console
// error or warning, or uncaught exception fails the test.
//
// Run it with `go test -tags browser -run TestPlaygroundBrowser ./server`
// (.ci/playground.sh installs Chromium first). CHROMIUM names the browser
// binary (default /usr/bin/chromium); without one the test is skipped.
// PLAYGROUND_SCREENSHOT=file.png saves what the page looked like at the end.
func TestPlaygroundBrowser(t *testing.T) {
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no Chromium at %s (set CHROMIUM, or apt-get install chromium)", bin)
	}
	s := newTestEnv(t).start(t)
	ctx := newBrowser(t, bin, 30*time.Second)

	// Subscribe before the page loads, so no message is lost.
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s %s %s", m, m.Source, m.URL))
				mu.Unlock()
			}
		}
	}()
	failf := func(format string, args ...any) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf(format+"\nconsole problems so far: %q", append(args, problems)...)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			failf("%s: %v", what, err)
		}
	}
	// Scripts added through the DevTools protocol are exempt from the
	// page's CSP, so this listener sees every violation, reported or not.
	_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__csp.push(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));`,
	})
	if err != nil {
		t.Fatalf("add the CSP listener: %v", err)
	}

	const (
		headers  = `section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden) .CodeMirror`
		response = `section.result-window .CodeMirror`
		execute  = `.graphiql-execute-button`
	)
	// editor returns the text of the CodeMirror editor sel.
	editor := func(sel string) string {
		t.Helper()
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.CodeMirror ? e.CodeMirror.getValue() : ''; })()`, sel)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			failf("read %s: %v", sel, err)
		}
		return v
	}
	// waitEditor polls the editor until ok accepts its text. (chromedp.Poll
	// would compile its predicate with new Function, which the CSP refuses.)
	waitEditor := func(what, sel string, ok func(string) bool) string {
		t.Helper()
		for {
			v := editor(sel)
			if ok(v) {
				return v
			}
			select {
			case <-ctx.Done():
				failf("%s: gave up; the editor holds %q", what, v)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// runTab opens the tab and runs its operation, once GraphiQL has parsed
	// the tab's query (it does so 100 ms after a change).
	runTab := func(title string) {
		t.Helper()
		do("open the "+title+" tab", chromedp.Click(chromedp.CSS(`[id^="graphiql-session-tab-"][title="`+title+`"]`), chromedp.NodeVisible))
		js := `document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.operationName`
		waitOp := func(string) string {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js+` || ''`))
			if err != nil {
				failf("read the operation name: %v", err)
			}
			return v
		}
		for op := waitOp(""); op != title; op = waitOp(op) {
			select {
			case <-ctx.Done():
				failf("tab %s: the query editor still names operation %q", title, op)
			case <-time.After(20 * time.Millisecond):
			}
		}
		do("run "+title, chromedp.Click(chromedp.CSS(execute), chromedp.NodeVisible))
	}

	do("open the page",
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-query-editor .CodeMirror`)),
		chromedp.WaitVisible(chromedp.CSS(headers)),
	)
	if got := editor(headers); !strings.Contains(got, `"Authorization": "Bearer <paste accessToken here>"`) {
		t.Errorf("headers editor=%q, want the Authorization placeholder", got)
	}
	titles, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[id^="graphiql-session-tab-"]')].map((b) => b.title)`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(titles, ","), "Register,Login,Me,CreatePost,Posts,RequestPasswordReset,EnrollTotp,MySecurityEvents"; got != want {
		t.Errorf("tabs=%s, want %s", got, want)
	}

	// Register and take the token from the response.
	runTab("Register")
	resp := waitEditor("Register response", response, func(v string) bool { return strings.Contains(v, `"data"`) || strings.Contains(v, `"errors"`) })
	var reg struct {
		Data struct {
			Register struct {
				AccessToken string `json:"accessToken"`
			} `json:"register"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal([]byte(resp), &reg); err != nil || len(reg.Errors) > 0 || reg.Data.Register.AccessToken == "" {
		failf("Register: %v, response %s", err, resp)
	}
	bearer := `"Authorization": "Bearer ` + reg.Data.Register.AccessToken + `"`
	waitEditor("the token in the headers", headers, func(v string) bool { return strings.Contains(v, bearer) })

	// Each tab has its own headers: the token follows to the next one.
	runTab("Me")
	if got := editor(headers); !strings.Contains(got, bearer) {
		t.Errorf("Me tab headers=%q, want the token", got)
	}
	resp = waitEditor("Me response", response, func(v string) bool { return strings.Contains(v, `"me"`) || strings.Contains(v, `"errors"`) })
	if !strings.Contains(resp, `"email": "ann@example.com"`) || strings.Contains(resp, `"errors"`) {
		t.Errorf("Me response=%s", resp)
	}

	// Dialogs and the docs pane are where UI libraries inject <style>
	// elements; open them under the CSP too.
	for _, dialog := range []string{"settings", "short keys"} {
		do("open and close the "+dialog+" dialog",
			chromedp.Click(chromedp.CSS(`button[aria-label="Open `+dialog+` dialog"]`), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS(`.graphiql-dialog`)),
			chromedp.KeyEvent(kb.Escape),
			chromedp.WaitNotPresent(chromedp.CSS(`.graphiql-dialog`)),
		)
	}
	do("open the docs",
		chromedp.Click(chromedp.CSS(`button[aria-label="Show Documentation Explorer"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`.graphiql-doc-explorer`)),
	)

	if out := os.Getenv("PLAYGROUND_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(out, png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}

	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Errorf("CSP violation: %s", v)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("console: %s", p)
	}
}

// newBrowser starts a headless Chromium with a fresh profile that makes no
// connections of its own (the machine may have no Internet), and returns
// the context of its first tab. Everything ends with the test or after d.
func newBrowser(t *testing.T, bin string, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	return bctx
}
