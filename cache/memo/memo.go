// Package memo is a bounded in-process map for read-mostly caches on the
// request path: verified access tokens (auth) and user records (the cache
// tiers). It imports only the standard library.
package memo

import "sync"

// Map is a bounded in-process map for read-mostly caches on the request
// path (verified tokens, user records). Reads take no lock (a sync.Map), so
// concurrent requests neither queue behind each other, as on an LRU whose
// every read moves an entry, nor contend on a read lock's counter; writes,
// which are rare, are serialized. When full, it forgets an arbitrary eighth
// of its entries: what it holds is always correct (the callers evict what
// a write invalidates), only sometimes gone.
type Map[K comparable, V any] struct {
	m   sync.Map   // K → V
	mu  sync.Mutex // serializes writes; guards n
	n   int
	max int
}

// New returns a Map holding at most max entries.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max}
}

// Get returns the value of k, if present.
func (l *Map[K, V]) Get(k K) (V, bool) {
	v, ok := l.m.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

// Add sets the value of k.
func (l *Map[K, V]) Add(k K, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m.Load(k); !ok && l.n >= l.max {
		drop := max(1, l.max/8)
		l.m.Range(func(old, _ any) bool {
			l.m.Delete(old)
			l.n--
			drop--
			return drop > 0
		})
	}
	if _, loaded := l.m.Swap(k, v); !loaded {
		l.n++
	}
}

// Remove forgets k.
func (l *Map[K, V]) Remove(k K) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, loaded := l.m.LoadAndDelete(k); loaded {
		l.n--
	}
}

// Purge forgets everything.
func (l *Map[K, V]) Purge() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m.Clear()
	l.n = 0
}

// Len is the number of entries.
func (l *Map[K, V]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
