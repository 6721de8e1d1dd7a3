package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/cache/cost"
	"github.com/authql/authql/cache/rdb"
)

// openCacheRedis returns the Redis of the cache tiers and persisted
// queries: the injected one, APP_CACHE_REDIS_URL's, or else the main Redis.
// Only cache entries live there, so it may evict (allkeys-lru) while the
// main Redis, which holds sessions, must not.
func (a *app) openCacheRedis(ctx context.Context, injected redis.UniversalClient) (redis.UniversalClient, error) {
	switch {
	case injected != nil:
		injected.AddHook(cost.Hook{})
		return injected, nil
	case a.cfg.CacheRedisURL == "":
		return a.rdb, nil
	}
	var client redis.UniversalClient
	err := a.retry(ctx, "cache redis (APP_CACHE_REDIS_URL)", redisTransient, func(ctx context.Context) (err error) {
		client, err = rdb.Open(ctx, a.cfg.cacheRedis())
		return err
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = client.Close() })
	client.AddHook(cost.Hook{})
	a.log.Info("the cache tiers and persisted queries use their own Redis (APP_CACHE_REDIS_URL)")
	return client, nil
}

// redisTransient reports whether a failure to reach Redis may pass by
// itself: no answer at all (refused, unresolvable, timed out, cut), or an
// answer that says to wait (loading its data set, a failover or resharding
// under way, a replica not yet promoted, too many clients). Any other
// answer (a wrong password, a missing permission) will not change.
func redisTransient(err error) bool {
	var answer redis.Error
	if !errors.As(err, &answer) {
		return true
	}
	return redis.IsLoadingError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsMasterDownError(err) || redis.IsReadOnlyError(err) || redis.IsMaxClientsError(err) ||
		redis.HasErrorPrefix(err, "BUSY")
}

// warnIfEvicting warns at start-up when the main Redis may evict keys under
// memory pressure. Any policy but noeviction evicts keys with a TTL:
// sessions and refresh tokens (users signed out at random) and revoked
// access tokens (accepted again: a revocation undone); allkeys-* also
// evicts the revocation log, which an instance that resubscribes replays.
// If CONFIG is not allowed (managed services rename it), it says so at
// debug level and moves on.
func (a *app) warnIfEvicting(ctx context.Context) {
	if a.cfg.EmbeddedRedis() {
		return // the embedded server never evicts
	}
	policies, err := evictionPolicies(ctx, a.rdb)
	if err != nil {
		a.log.Debug("cannot read the Redis maxmemory-policy (CONFIG GET refused); it must be noeviction", slog.Any("error", err))
		return
	}
	var evicting []string
	for addr, p := range policies {
		if p != "noeviction" {
			evicting = append(evicting, addr+"="+p)
		}
	}
	if len(evicting) == 0 {
		return
	}
	sort.Strings(evicting)
	a.log.Warn("the main Redis may evict session state: its maxmemory-policy is not noeviction, so under memory pressure it drops sessions, "+
		"refresh tokens and revoked-token entries (a revoked token is accepted again), and with allkeys-* the revocation log too; "+
		"set maxmemory-policy noeviction on it and give the cache its own Redis (APP_CACHE_REDIS_URL)",
		slog.String("maxmemory_policy", strings.Join(evicting, ",")))
}

// evictionPolicies reads maxmemory-policy from the Redis (every master of
// a cluster), by address.
func evictionPolicies(ctx context.Context, rdb redis.UniversalClient) (map[string]string, error) {
	var mu sync.Mutex
	out := map[string]string{}
	get := func(ctx context.Context, c *redis.Client) error {
		v, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return err
		}
		p, ok := v["maxmemory-policy"]
		if !ok {
			return fmt.Errorf("CONFIG GET maxmemory-policy: no value")
		}
		mu.Lock()
		out[c.Options().Addr] = p
		mu.Unlock()
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, get)
	case *redis.Client:
		err = get(ctx, c)
	default:
		err = fmt.Errorf("unsupported client %T", rdb)
	}
	return out, err
}
