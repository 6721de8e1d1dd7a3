// Package rdb opens the Redis clients of the server (Open), bounds what a
// request may wait on Redis (WithBudget), and defines ErrUnavailable, the
// one error that means a dependency could not be reached.
//
// It imports go-redis and nothing of this module, so that every package
// that talks to Redis (auth, cache and its subpackages, graph/store,
// server) may import it.
package rdb

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
	// Timeout bounds each dial, read and write, and the wait for a pooled
	// connection (0: DefaultTimeout). A request's own Redis budget
	// (WithBudget) is usually shorter and then bounds it first.
	Timeout time.Duration
}

// ErrUnavailable means a dependency (Redis, the session store or a cache
// write that a database write depends on) could not be reached, so the
// operation was refused rather than done unchecked or half done. Callers
// wrap it with the operation and the cause (Unavailable) and match it with
// errors.Is; the GraphQL layer answers SERVICE_UNAVAILABLE.
var ErrUnavailable = errors.New("dependency unavailable")

// Unavailable returns err wrapped as ErrUnavailable for the operation op.
func Unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// DefaultTimeout is Config.Timeout's default: long enough for a loaded
// Redis, short enough that background work (heartbeats, outbox delivery)
// notices a hung one within seconds.
const DefaultTimeout = time.Second

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
	// A hung Redis (a stopped process, a stalled network) answers nothing
	// and closes nothing: only timeouts end the wait. Each dial, read and
	// write has one; a request's Redis budget (budget.go) usually ends it
	// sooner, through the context, which go-redis watches only with
	// ContextTimeoutEnabled.
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
	opts.ContextTimeoutEnabled = true
	// Retries, chosen so they cannot multiply the bound: one dial retry,
	// and one retry of a command whose connection broke (EOF, reset: a
	// pooled connection Redis closed while idle). go-redis also retries a
	// read that timed out; within a request the budget's deadline has
	// passed by then, so that retry fails at once. In background work it
	// doubles the wait (2 × Timeout), which nothing there minds.
	opts.DialerRetries = 1
	opts.MaxRetries = 1
	opts.DisableIdentity = true
	// Pub/sub (the bus) is unaffected by ReadTimeout: PubSub.ReceiveTimeout
	// sets its own read deadline per call, and a timeout there does not
	// count as a broken connection.

	rdb := redis.NewUniversalClient(&opts)
	rdb.AddHook(budgetHook{})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	return rdb, nil
}
