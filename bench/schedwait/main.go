// Command schedwait reads a Go runtime execution trace and prints how long
// goroutines waited to run once they could: from becoming runnable to
// running, as percentiles, by how they became runnable. It is how
// docs/PERFORMANCE.md shows where a request's tail latency goes.
//
// It is a module of its own, so that the server's go.mod does not carry
// golang.org/x/exp. With APP_PPROF=true, under load:
//
//	curl -s "http://$METRICS_ADDR/debug/pprof/trace?seconds=2" > trace.out
//	cd bench/schedwait && go run . ../../trace.out
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/exp/trace"
)

// cause is how a goroutine became runnable.
func cause(ev trace.Event, from trace.GoState) string {
	switch {
	case from == trace.GoRunning:
		return "yielded or preempted"
	case from == trace.GoNotExist:
		return "created"
	case from == trace.GoWaiting && ev.Goroutine() == trace.NoGoroutine:
		return "woken by the network poller or a timer"
	case from == trace.GoWaiting:
		return "woken by another goroutine"
	case from == trace.GoSyscall:
		return "back from a system call"
	}
	return ""
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schedwait TRACE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "schedwait:", err)
		os.Exit(1)
	}
}

func run(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	type pending struct {
		at    trace.Time
		cause string
	}
	ready := map[trace.GoID]pending{}
	waits := map[string][]time.Duration{}
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		switch to {
		case trace.GoRunnable:
			if c := cause(ev, from); c != "" {
				ready[id] = pending{ev.Time(), c}
			}
		case trace.GoRunning:
			if p, ok := ready[id]; ok {
				waits[p.cause] = append(waits[p.cause], ev.Time().Sub(p.at))
				delete(ready, id)
			}
		}
	}
	causes := make([]string, 0, len(waits))
	for c := range waits {
		causes = append(causes, c)
	}
	slices.Sort(causes)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
	fmt.Fprintf(out, "%-40s %9s %7s %7s %7s %7s %7s (ms)\n", "became runnable", "count", "p50", "p90", "p99", "p99.9", "max")
	for _, c := range causes {
		w := waits[c]
		slices.Sort(w)
		q := func(p float64) time.Duration { return w[int(p*float64(len(w)-1))] }
		fmt.Fprintf(out, "%-40s %9d %7s %7s %7s %7s %7s\n", c, len(w), ms(q(.5)), ms(q(.9)), ms(q(.99)), ms(q(.999)), ms(w[len(w)-1]))
	}
	return nil
}
