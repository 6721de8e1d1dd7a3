// Package cache holds the Redis client shared by the whole server, the
// cache tiers kept in Redis, and the per-request dataloaders.
package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config says which Redis to use. Exactly one of URL, ClusterAddrs and
// SentinelAddrs is set.
type Config struct {
	// URL is a redis:// or rediss:// URL of a single node.
	URL string
	// ClusterAddrs are seed nodes of a Redis Cluster.
	ClusterAddrs []string
	// SentinelAddrs are Sentinel nodes; MasterName names the monitored master.
	SentinelAddrs []string
	MasterName    string
	// Username and Password authenticate to cluster and sentinel-managed
	// nodes (a URL carries its own).
	Username string
	Password string
	// PoolSize is the connection pool size per node (0: go-redis default,
	// 10 per CPU).
	PoolSize int
}

// Open returns a go-redis UniversalClient for the configured mode and checks
// that it answers. The same code paths run against a single node, a
// Sentinel-managed master or a Cluster.
func Open(ctx context.Context, cfg Config) (redis.UniversalClient, error) {
	var opts redis.UniversalOptions
	switch {
	case cfg.URL != "":
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("parse redis url: %w", err)
		}
		opts = redis.UniversalOptions{
			Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, Protocol: o.Protocol,
		}
	case len(cfg.ClusterAddrs) > 0:
		opts = redis.UniversalOptions{Addrs: cfg.ClusterAddrs, IsClusterMode: true}
	case len(cfg.SentinelAddrs) > 0:
		if cfg.MasterName == "" {
			return nil, errors.New("redis sentinel needs a master name")
		}
		opts = redis.UniversalOptions{Addrs: cfg.SentinelAddrs, MasterName: cfg.MasterName}
	default:
		return nil, errors.New("no redis configured")
	}
	if cfg.Username != "" {
		opts.Username = cfg.Username
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password
	}
	opts.PoolSize = cfg.PoolSize
	// Fail fast: a request waiting on a dead Redis should fail in well under
	// a second, not hang for the library's default timeouts.
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	opts.PoolTimeout = 2 * time.Second
	// One dial attempt and one retry per command: with Redis down, a request
	// gets SERVICE_UNAVAILABLE in milliseconds, not after seconds of
	// backoff. (go-redis then stops dialing for a second at a time after a
	// run of failures, and notices by itself when Redis is back.)
	opts.DialerRetries = 1
	opts.MaxRetries = 1
	opts.DisableIdentity = true

	rdb := redis.NewUniversalClient(&opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	return rdb, nil
}
