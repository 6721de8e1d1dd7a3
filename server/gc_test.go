package main

import (
	"math"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

// gogc is the GOGC the runtime runs with.
func gogc() int {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until cond holds (the floor adjusts on
// the finalizer goroutine, after a collection) or a few seconds pass.
func collectUntil(t *testing.T, what string, cond func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		if p := gogc(); cond(p) {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC is %d", what, p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The server raises the collector's target unless the operator set GOGC.
func TestGCTarget(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	tuneGC(func(string) string { return "" }, 0)()
	if got := gogc(); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}
	debug.SetGCPercent(100)
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}, 64<<20)()
	collectUntil(t, "GOGC=100 and a floor", func(p int) bool { return p == 100 })
}

// While little is live the floor raises GOGC so that the heap may reach
// the floor; once more is live than the floor, GOGC is the default again;
// and it rises again when that is freed.
func TestGCHeapFloor(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	const floor = 256 << 20
	stop := tuneGC(func(string) string { return "" }, floor)
	defer stop()

	// The test binary keeps a few MiB live: the floor is many times that.
	collectUntil(t, "small live heap", func(p int) bool { return p > 2*defaultGCPercent })

	held := make([]*[1 << 20]byte, 320) // 320 MiB live, past the floor
	for i := range held {
		held[i] = new([1 << 20]byte)
	}
	collectUntil(t, "live heap past the floor", func(p int) bool { return p == defaultGCPercent })
	runtime.KeepAlive(held)
	held = nil

	collectUntil(t, "freed again", func(p int) bool { return p > 2*defaultGCPercent })
	stop()
	if got := gogc(); got != defaultGCPercent {
		t.Errorf("stopped: GOGC %d, want %d", got, defaultGCPercent)
	}
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != defaultGCPercent {
		t.Errorf("collections after stop changed GOGC to %d", got)
	}
}

func TestFloorPercent(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		name          string
		live, scanned uint64
		want          int
	}{
		{"heap goal at the floor", 8 * MiB, 8 * MiB, 1500},   // 8 + 8×15 = 128
		{"stacks count", 8 * MiB, 24 * MiB, 500},             // 8 + 24×5 = 128
		{"never under the default", 40 * MiB, 40 * MiB, 400}, // 40 + 40×2.2 < 40 + 40×4
		{"past the floor", 200 * MiB, 200 * MiB, 400},
		{"nothing collected yet", 0, 0, 400},
		{"tiny heap", 1, 1, math.MaxInt32},
	} {
		if got := floorPercent(128*MiB, 400, c.live, c.scanned); got != c.want {
			t.Errorf("%s: floorPercent(live %d, scanned %d) = %d, want %d", c.name, c.live, c.scanned, got, c.want)
		}
	}
}

func TestAutoHeapFloor(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		name     string
		cgroup   uint64
		memLimit int64
		want     int64
	}{
		{"no limits", 0, math.MaxInt64, 128 * MiB},
		{"a large container", 8 << 30, math.MaxInt64, 128 * MiB},
		{"a 256 MiB container", 256 * MiB, math.MaxInt64, 64 * MiB},
		{"cgroup v1 without a limit", 9223372036854771712, math.MaxInt64, 128 * MiB},
		{"GOMEMLIMIT", 0, 100 * MiB, 50 * MiB},
		{"both, the smaller wins", 160 * MiB, 100 * MiB, 40 * MiB},
	} {
		if got := autoHeapFloor(c.cgroup, c.memLimit); got != c.want {
			t.Errorf("%s: autoHeapFloor = %d MiB, want %d MiB", c.name, got/MiB, c.want/MiB)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for v, want := range map[string]int64{"0": 0, "4096": 4096, "512B": 512, "64KiB": 64 << 10, "128MiB": 128 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40} {
		if got, err := parseBytes(v); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "MiB", "-1MiB", "128MB", "128 MiB", "1.5GiB", "9999999TiB"} {
		if _, err := parseBytes(v); err == nil {
			t.Errorf("parseBytes(%q) accepted", v)
		}
	}
}
