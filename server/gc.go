package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow to five times what is live before a collection, where
// Go's default is twice. A request allocates far more than the server
// keeps, so with Go's default an uncached page of posts collected about 30
// times a second under load and spent a third of its CPU and most of its
// p99 in the collector. The price is memory: the peak RSS of a loaded
// instance (docs/PERFORMANCE.md).
const defaultGCPercent = 400

// defaultHeapFloor is the heap an instance may reach before a collection
// however little is live. What an instance keeps is small (about 7 MiB
// serving pages), so a target proportional to it alone still collects
// tens of times a second under load; a floor of 128 MiB served a median
// 5% more uncached pages from SQLite (docs/PERFORMANCE.md). An instance
// whose live heap grows (thousands of sockets) is past the floor and
// keeps defaultGCPercent, so the floor adds at most its own size to any
// instance's heap.
const defaultHeapFloor = 128 << 20

// tuneGC sets the collector's target unless the operator set GOGC (which
// the Go runtime reads itself): defaultGCPercent, and a heap floor of
// floor bytes (negative: autoHeapFloor; 0: none). stop ends the floor's
// tuning and leaves defaultGCPercent.
func tuneGC(getenv func(string) string, floor int64) (stop func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	debug.SetGCPercent(defaultGCPercent)
	if floor < 0 {
		floor = autoHeapFloor(cgroupMemoryLimit(), debug.SetMemoryLimit(-1))
	}
	if floor == 0 {
		return func() {}
	}
	f := &heapFloor{floor: uint64(floor), percent: defaultGCPercent,
		sample: []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	f.adjust()
	f.arm()
	return f.stop
}

// autoHeapFloor is the default floor: defaultHeapFloor, at most a quarter
// of the container's memory limit (cgroup, in bytes; 0: none) and half of
// the runtime's soft limit (GOMEMLIMIT; math.MaxInt64: none), so that a
// small container keeps its room for stacks, buffers and the database.
func autoHeapFloor(cgroup uint64, memLimit int64) int64 {
	floor := int64(defaultHeapFloor)
	if cgroup > 0 && cgroup/4 < uint64(floor) {
		floor = int64(cgroup / 4)
	}
	if memLimit < math.MaxInt64 && memLimit/2 < floor {
		floor = memLimit / 2
	}
	return max(floor, 0)
}

// cgroupMemoryLimit is the memory limit of the process's cgroup (v2, or v1
// where v2 is not mounted) in bytes; 0 when there is none or none can be
// read.
func cgroupMemoryLimit() uint64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil { // "max"
			return 0
		}
		return n
	}
	return 0
}

// heapFloor raises GOGC after each collection so that the next one starts
// at about floor bytes of heap while what is live is well below it, and
// leaves defaultGCPercent once it is not. The runtime has no such setting: GOMEMLIMIT
// is a ceiling. The heap goal counts the stacks and globals the collector
// scans besides the live heap, so they count here too.
type heapFloor struct {
	floor uint64

	mu      sync.Mutex
	stopped bool
	percent int // the GOGC last set
	sample  []rtmetrics.Sample
}

// gcSentinel holds a pointer, so it is never packed into a shared tiny
// block and its finalizer runs at the first collection after arm.
type gcSentinel struct{ _ *byte }

// arm has adjust run once after the next collection, and arm again.
func (f *heapFloor) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if f.adjust() {
			f.arm()
		}
	})
}

// adjust sets GOGC from the last collection's figures; false once stopped.
func (f *heapFloor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	rtmetrics.Read(f.sample)
	live, stacks, globals := f.sample[0].Value.Uint64(), f.sample[1].Value.Uint64(), f.sample[2].Value.Uint64()
	if p := floorPercent(f.floor, defaultGCPercent, live, live+stacks+globals); p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	return true
}

func (f *heapFloor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	debug.SetGCPercent(defaultGCPercent)
}

// floorPercent is the GOGC whose heap goal, live + scanned×GOGC/100 (Go's
// pacer), is floor, and base where that is less than base.
func floorPercent(floor uint64, base int, live, scanned uint64) int {
	if scanned == 0 || live >= floor {
		return base
	}
	p := (floor - live) * 100 / scanned
	if p > math.MaxInt32 { // the runtime keeps GOGC in an int32
		p = math.MaxInt32
	}
	return max(int(p), base)
}
