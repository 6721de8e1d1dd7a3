package cache

import "testing"

func TestLocalStaysBounded(t *testing.T) {
	l := NewLocal[int, int](16)
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
