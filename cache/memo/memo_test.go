package memo

import (
	"strconv"
	"sync"
	"testing"
)

func TestMapStaysBounded(t *testing.T) {
	l := New[int, int](16)
	for i := range 1000 {
		l.Add(i, i*i)
		if n := l.Len(); n > 16 {
			t.Fatalf("%d entries, want at most 16", n)
		}
		if v, ok := l.Get(i); !ok || v != i*i {
			t.Fatalf("Get(%d)=%d,%v right after Add", i, v, ok)
		}
	}
	l.Remove(999)
	if _, ok := l.Get(999); ok {
		t.Error("removed entry still there")
	}
	l.Purge()
	if n := l.Len(); n != 0 {
		t.Errorf("%d entries after Purge", n)
	}
}

// A lookup is on every authenticated request: it allocates nothing.
func TestMapGetAllocations(t *testing.T) {
	l := New[string, *int](16)
	v := 7
	key := string([]byte("US01M8CKBWA4BX1385W7FJXY22T4")) // not a constant
	l.Add(key, &v)
	if n := testing.AllocsPerRun(100, func() {
		if got, ok := l.Get(key); !ok || *got != 7 {
			t.Fatal("lost the entry")
		}
	}); n != 0 {
		t.Errorf("Get: %v allocations, want 0", n)
	}
}

// Readers and writers at once: run with -race.
func TestMapConcurrent(t *testing.T) {
	l := New[int, int](64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i * (g + 1)) % 200
				switch i % 5 {
				case 0:
					l.Add(k, k*k)
				case 1:
					l.Remove(k)
				default:
					if v, ok := l.Get(k); ok && v != k*k {
						t.Errorf("Get(%d)=%d", k, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 64 || n < 0 {
		t.Errorf("%d entries, want 0 to 64", n)
	}
	count := 0
	l.m.Range(func(any, any) bool { count++; return true })
	if count != l.Len() {
		t.Errorf("Len()=%d, but %d entries", l.Len(), count)
	}
}

// BenchmarkMapGet is lookups from every core at once, as requests make
// them: with a read lock they contend on its counter; without, they don't.
func BenchmarkMapGet(b *testing.B) {
	l := New[string, int](10_000)
	for i := range 1000 {
		l.Add(strconv.Itoa(i), i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := l.Get("500"); !ok {
				b.Fatal("lost the entry")
			}
		}
	})
}
