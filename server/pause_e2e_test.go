package main

import (
	"syscall"
	"testing"
	"time"
)

// A paused instance never accepts a revoked token. Two instances run as
// processes of their own; B is frozen (SIGSTOP) for 100 to 600 ms across a
// logout on A (a GC pause or CPU starvation of that length does the same).
// Every request B answers after the logout returned refuses the token:
// either B applied the revocation before A stopped waiting for it, or B's
// lease ran out first and it asks Redis.
func TestPausedInstanceNeverAcceptsRevokedToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_LOGIN_ACCOUNT"] = "1000/1m"
	pa, pb := e.startProcess(t, nil), e.startProcess(t, nil)
	a, b := pa.server(), pb.server()
	a.register(t, "ann@example.com", "plum-tree-42", "Ann")

	accepted := 0
	for _, pause := range []time.Duration{100, 200, 300, 400, 500, 600, 300, 450, 550} {
		pause *= time.Millisecond
		tok := a.login(t, "ann@example.com", "plum-tree-42")
		// B knows the token, and answers from memory (synced).
		for deadline := time.Now().Add(10 * time.Second); ; {
			r := b.do(t, tok.Access, `{ me { id } }`, nil)
			if len(r.Errors) == 0 && authCostOf(r) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B never answered from memory: %+v; log:\n%s", r.Errors, pb.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}

		pb.pause(t)
		resumed := make(chan time.Time, 1)
		go func() {
			time.Sleep(pause) // the stop's length is what the test varies
			_ = pb.cmd.Process.Signal(syscall.SIGCONT)
			resumed <- time.Now()
		}()
		start := time.Now()
		a.do(t, tok.Access, `mutation { logout }`, nil).mustOK(t)
		returned := time.Now()
		took := returned.Sub(start)
		// A request sent the moment the logout returned waits in B's socket
		// until B resumes; another is sent once it has.
		var resumedAt time.Time
		for i := range 2 {
			if i == 1 {
				resumedAt = <-resumed
			}
			r := b.do(t, tok.Access, `{ me { id } }`, nil)
			if len(r.Errors) == 0 {
				accepted++
				t.Errorf("pause %v: B accepted the token revoked by a logout that returned after %v", pause, took)
			} else if got := r.code(t); got != "UNAUTHENTICATED" {
				t.Errorf("pause %v: code=%q, want UNAUTHENTICATED", pause, got)
			}
		}
		t.Logf("pause %v: logout returned after %v, %v before B resumed", pause, took, resumedAt.Sub(returned).Round(time.Millisecond))
	}
	if accepted > 0 {
		t.Errorf("%d acceptances of a revoked token after the logout returned, want 0", accepted)
	}
}
