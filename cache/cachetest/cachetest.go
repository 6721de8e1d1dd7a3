// Package cachetest gives tests a Redis: the real one named by REDIS_URL
// (or the cluster named by APP_REDIS_CLUSTER_ADDRS, or the master that the
// Sentinels of APP_REDIS_SENTINEL_ADDRS name APP_REDIS_MASTER_NAME) when
// set, otherwise an in-process miniredis. Each test gets its own key prefix, so tests run in
// parallel against one shared Redis without FLUSHDB, and its keys are
// deleted when it ends.
//
// It imports cache/rdb. Only tests import it.
package cachetest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/rdb"
)

// Redis is a Redis for one test.
type Redis struct {
	Client redis.UniversalClient
	// Prefix is unique to the test; pass it to every constructor that
	// builds keys.
	Prefix string
	// Mini is the in-process server, or nil when the test runs against a
	// real Redis. Tests that need to stop Redis use it when set.
	Mini *miniredis.Miniredis
	// Config opens another client to the same Redis (a second instance).
	Config rdb.Config
}

// External reports whether tests run against a real Redis, and which.
func External() (rdb.Config, bool) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return rdb.Config{URL: u}, true
	}
	if a := os.Getenv("APP_REDIS_CLUSTER_ADDRS"); a != "" {
		return rdb.Config{ClusterAddrs: strings.Split(a, ",")}, true
	}
	if a := os.Getenv("APP_REDIS_SENTINEL_ADDRS"); a != "" {
		return rdb.Config{SentinelAddrs: strings.Split(a, ","), MasterName: os.Getenv("APP_REDIS_MASTER_NAME")}, true
	}
	return rdb.Config{}, false
}

// New returns a Redis for tb.
func New(tb testing.TB) *Redis {
	tb.Helper()
	ctx := context.Background()
	r := &Redis{Prefix: "test:" + strings.ToLower(rand.Text()[:12]) + ":"}
	cfg, ok := External()
	if !ok {
		r.Mini = miniredis.RunT(tb)
		cfg = rdb.Config{URL: "redis://" + r.Mini.Addr()}
	}
	r.Config = cfg
	r.Client = Open(tb, cfg)
	if ok {
		tb.Cleanup(func() { deletePrefix(ctx, r.Client, r.Prefix) })
	}
	return r
}

// Open opens another client to cfg, closed when tb ends.
func Open(tb testing.TB, cfg rdb.Config) redis.UniversalClient {
	tb.Helper()
	client, err := rdb.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// Keys returns the keys matching pattern (a SCAN pattern), from every
// master of a cluster.
func Keys(tb testing.TB, rdb redis.UniversalClient, pattern string) []string {
	tb.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(context.Background(), scan)
	case *redis.Client:
		err = scan(context.Background(), c)
	}
	if err != nil {
		tb.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}

// deletePrefix removes the test's keys from every master.
func deletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}
