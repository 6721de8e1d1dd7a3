package cache

import "sync"

// Local is a bounded in-process map for read-mostly caches on the request
// path (verified tokens, user records): reads share a read lock, so
// concurrent requests do not queue behind each other as they would on an
// LRU, whose every read moves an entry. When full, it forgets an arbitrary
// eighth of its entries: what it holds is always correct (the callers
// evict what a write invalidates), only sometimes gone.
type Local[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

// NewLocal returns a Local holding at most max entries.
func NewLocal[K comparable, V any](max int) *Local[K, V] {
	return &Local[K, V]{m: make(map[K]V), max: max}
}

// Get returns the value of k, if present.
func (l *Local[K, V]) Get(k K) (V, bool) {
	l.mu.RLock()
	v, ok := l.m[k]
	l.mu.RUnlock()
	return v, ok
}

// Add sets the value of k.
func (l *Local[K, V]) Add(k K, v V) {
	l.mu.Lock()
	if _, ok := l.m[k]; !ok && len(l.m) >= l.max {
		drop := max(1, l.max/8)
		for old := range l.m {
			delete(l.m, old)
			if drop--; drop == 0 {
				break
			}
		}
	}
	l.m[k] = v
	l.mu.Unlock()
}

// Remove forgets k.
func (l *Local[K, V]) Remove(k K) {
	l.mu.Lock()
	delete(l.m, k)
	l.mu.Unlock()
}

// Purge forgets everything.
func (l *Local[K, V]) Purge() {
	l.mu.Lock()
	clear(l.m)
	l.mu.Unlock()
}

// Len is the number of entries.
func (l *Local[K, V]) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}
