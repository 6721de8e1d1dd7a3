package cachetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of a test's own, for what a shared Redis cannot
// do: be stopped, restarted, restored from an old snapshot.
type Server struct {
	// URL reaches the server (it keeps its port across restarts).
	URL string
	// Dir is the server's working directory (dump.rdb lives there).
	Dir string

	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

// StartServer starts a redis-server (RDB snapshots only when asked: SAVE)
// on a free port, stopped when tb ends. It skips tb if redis-server is not
// installed.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server is not installed (CI installs it): this test needs a Redis of its own to restart")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{tb: tb, port: port, Dir: tb.TempDir(), URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start starts the server (again), loading dump.rdb if there is one.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.Dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			s.tb.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop stops the server without saving.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server's process (SIGSTOP) and returns once the kernel
// reports it stopped: the socket stays open and the kernel still accepts
// connections into its backlog, but nothing answers. That is a hung Redis
// (a frozen VM, a host swapping, a stuck fork), which a closed port does
// not play: clients wait for their timeouts instead of failing at once.
func (s *Server) Pause() {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("SIGSTOP redis-server: %v", err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no procfs: trust the signal
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server not stopped 5 s after SIGSTOP: %s", b)
		}
	}
}

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.tb.Fatalf("SIGCONT redis-server: %v", err)
	}
}

// Snapshot saves the data set (SAVE) and keeps a copy of it.
func (s *Server) Snapshot(ctx context.Context) []byte {
	s.tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		s.tb.Fatalf("SAVE: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "dump.rdb"))
	if err != nil {
		s.tb.Fatal(err)
	}
	return b
}

// Restore stops the server, puts an old snapshot in place and starts the
// server from it: what a restart from a backup, or a failover to a replica
// that lagged, does to the data.
func (s *Server) Restore(snapshot []byte) {
	s.tb.Helper()
	s.Stop()
	if err := os.WriteFile(filepath.Join(s.Dir, "dump.rdb"), snapshot, 0o600); err != nil {
		s.tb.Fatal(err)
	}
	s.Start()
}
