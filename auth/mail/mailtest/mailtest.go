// Package mailtest runs Mailpit (github.com/axllent/mailpit), a real SMTP
// server with an HTTP API, for tests that send mail and read it back.
//
// The binary comes from MAILPIT_BIN, else from PATH. Without it the tests
// skip, saying how to build it (.ci/run builds it and sets MAILPIT_BIN, so
// CI always runs them). It imports nothing of this module.
package mailtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env is the environment variable naming the Mailpit binary.
const Env = "MAILPIT_BIN"

// Mailpit is one running server.
type Mailpit struct {
	bin      string
	dir      string
	SMTPAddr string // host:port of its SMTP listener
	APIURL   string // base URL of its HTTP API and web UI

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Binary returns the path of the Mailpit binary, or "" if there is none.
func Binary() string {
	if b := os.Getenv(Env); b != "" {
		return b
	}
	if b, err := exec.LookPath("mailpit"); err == nil {
		return b
	}
	return ""
}

// Start runs Mailpit on ephemeral ports for the rest of the test, or skips
// the test if there is no binary.
func Start(tb testing.TB) *Mailpit {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		tb.Skip("mailpit not found: build it with `go build -C .ci/tools/mailpit -o $PWD/bin/mailpit github.com/axllent/mailpit` and set " + Env + " (.ci/run does)")
	}
	m := &Mailpit{bin: bin, dir: tb.TempDir(), SMTPAddr: freeAddr(tb)}
	m.APIURL = "http://" + freeAddr(tb)
	if err := m.start(); err != nil {
		tb.Fatalf("start mailpit: %v", err)
	}
	tb.Cleanup(m.Stop)
	return m
}

// SMTPURL is the APP_SMTP_URL that reaches the server (plain SMTP: a test
// server on the loopback interface).
func (m *Mailpit) SMTPURL() string { return "smtp://" + m.SMTPAddr + "?tls=none" }

func (m *Mailpit) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	api := strings.TrimPrefix(m.APIURL, "http://")
	cmd := exec.Command(m.bin, "--smtp", m.SMTPAddr, "--listen", api,
		"--database", filepath.Join(m.dir, "mailpit.db"), "--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--quiet")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", m.SMTPAddr, time.Second)
		if err == nil {
			c.Close()
			if res, err := http.Get(m.APIURL + "/api/v1/messages"); err == nil {
				res.Body.Close()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("mailpit did not listen on %s and %s", m.SMTPAddr, m.APIURL)
}

// Stop stops the server (its mail stays in its database for Restart).
func (m *Mailpit) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// Restart starts a stopped server again on the same ports.
func (m *Mailpit) Restart(tb testing.TB) {
	tb.Helper()
	if err := m.start(); err != nil {
		tb.Fatalf("restart mailpit: %v", err)
	}
}

// Address is a sender or recipient.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Message is one mail as Mailpit's API returns it (/api/v1/message/{ID}).
type Message struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Subject   string    `json:"Subject"`
	Text      string    `json:"Text"`
	HTML      string    `json:"HTML"`
}

// Messages returns every mail received for to (every mail if to is ""),
// oldest first, with their bodies.
func (m *Mailpit) Messages(tb testing.TB, to string) []Message {
	tb.Helper()
	var list struct {
		Messages []Message `json:"messages"`
	}
	q := url.Values{"limit": {"500"}}
	m.get(tb, "/api/v1/messages?"+q.Encode(), &list)
	var out []Message
	for i := len(list.Messages) - 1; i >= 0; i-- { // the API lists newest first
		s := list.Messages[i]
		if to != "" && !sentTo(s, to) {
			continue
		}
		var full Message
		m.get(tb, "/api/v1/message/"+url.PathEscape(s.ID), &full)
		out = append(out, full)
	}
	return out
}

// Wait waits until at least n mails were received for to and returns
// them; it fails the test after within.
func (m *Mailpit) Wait(tb testing.TB, to string, n int, within time.Duration) []Message {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		got := m.Messages(tb, to)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v, %d mails for %s, want %d", within, len(got), to, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sentTo(s Message, to string) bool {
	for _, a := range s.To {
		if strings.EqualFold(a.Address, to) {
			return true
		}
	}
	return false
}

func (m *Mailpit) get(tb testing.TB, path string, v any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.APIURL+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("mailpit API %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("mailpit API %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		tb.Fatalf("mailpit API %s: %v", path, err)
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
