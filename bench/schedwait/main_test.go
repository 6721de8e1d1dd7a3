package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	rtrace "runtime/trace"
	"strings"
	"testing"
)

// A trace of goroutines that yield and wake each other reads back with a
// wait for each cause they took.
func TestWaitsByCause(t *testing.T) {
	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			runtime.Gosched()
			pong <- v
		}
	}()
	for i := range 100 {
		ping <- i
		<-pong
	}
	close(ping)
	rtrace.Stop()
	path := filepath.Join(t.TempDir(), "trace.out")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := run(path, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"created", "woken by another goroutine", "yielded or preempted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no line for %q in\n%s", want, out.String())
		}
	}
}

func TestNotATrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.out")
	if err := os.WriteFile(path, []byte("not a trace"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(path, new(strings.Builder)); err == nil {
		t.Fatal("no error for a file that is not a trace")
	}
}
