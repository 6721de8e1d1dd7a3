package cache

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/maypok86/otter/v2"
)

// Weighted is an in-process cache bounded by the memory its entries hold,
// not by their number: a thousand-entry LRU of query documents holds a
// gigabyte if each document is a megabyte. It is otter's W-TinyLFU cache
// with a weigher, so a flood of distinct documents, each seen once, is
// mostly refused admission instead of evicting the ones in constant use.
type Weighted[V any] struct {
	c     *otter.Cache[string, weighed[V]]
	weigh func(key string, v V) int
}

// weighed is a value with its weight, measured once, outside the cache's
// locks (otter calls its weigher under a bucket lock).
type weighed[V any] struct {
	v V
	w uint32
}

var _ graphql.Cache[string] = (*Weighted[string])(nil)

// NewWeighted returns a cache holding at most maxBytes, as weigh measures
// its entries (the key included). An entry heavier than maxBytes is not
// kept.
func NewWeighted[V any](maxBytes uint64, weigh func(key string, v V) int) *Weighted[V] {
	return NewExpiringWeighted(maxBytes, 0, weigh)
}

// NewExpiringWeighted is NewWeighted whose entries also expire ttl after
// they were added (0: never).
func NewExpiringWeighted[V any](maxBytes uint64, ttl time.Duration, weigh func(key string, v V) int) *Weighted[V] {
	o := &otter.Options[string, weighed[V]]{
		MaximumWeight: maxBytes,
		Weigher:       func(_ string, e weighed[V]) uint32 { return e.w },
	}
	if ttl > 0 {
		o.ExpiryCalculator = otter.ExpiryWriting[string, weighed[V]](ttl)
	}
	return &Weighted[V]{c: otter.Must(o), weigh: weigh}
}

// Get implements graphql.Cache.
func (c *Weighted[V]) Get(_ context.Context, key string) (V, bool) {
	e, ok := c.c.GetIfPresent(key)
	return e.v, ok
}

// Add implements graphql.Cache.
func (c *Weighted[V]) Add(_ context.Context, key string, v V) {
	w := c.weigh(key, v)
	if w < 1 {
		w = 1
	}
	if uint64(w) > uint64(^uint32(0)) {
		return
	}
	c.c.Set(key, weighed[V]{v: v, w: uint32(w)})
}

// Remove forgets key.
func (c *Weighted[V]) Remove(key string) { c.c.Invalidate(key) }

// Purge forgets every entry.
func (c *Weighted[V]) Purge() { c.c.InvalidateAll() }

// Weight is the total weight held now (after pending evictions ran).
func (c *Weighted[V]) Weight() uint64 {
	c.c.CleanUp()
	return c.c.WeightedSize()
}

// Len is the number of entries held now.
func (c *Weighted[V]) Len() int {
	c.c.CleanUp()
	return c.c.EstimatedSize()
}
