package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/redis/go-redis/v9"
)

// PersistedQueries is the automatic-persisted-query store: query texts by
// their SHA-256, in Redis so that every instance knows a query any instance
// was sent, behind an in-process LRU. Entries are content-addressed (gqlgen
// checks the hash before storing), so the local copy can never be stale.
type PersistedQueries struct {
	rdb   redis.UniversalClient
	k     keys
	local *lru.LRU[string]
	ttl   time.Duration
	log   *slog.Logger
}

var _ graphql.Cache[string] = (*PersistedQueries)(nil)

// NewPersistedQueries returns the store; queries live ttl in Redis.
func NewPersistedQueries(rdb redis.UniversalClient, prefix string, ttl time.Duration, log *slog.Logger) *PersistedQueries {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PersistedQueries{rdb: rdb, k: keys{prefix}, local: lru.New[string](1000), ttl: ttl, log: log}
}

// Get implements graphql.Cache.
func (q *PersistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	if s, ok := q.local.Get(ctx, hash); ok {
		return s, true
	}
	s, err := q.rdb.Get(ctx, q.k.apq(hash)).Result()
	if err != nil {
		if err != redis.Nil {
			q.log.WarnContext(ctx, "persisted query store unavailable", slog.Any("error", err))
		}
		return "", false
	}
	q.local.Add(ctx, hash, s)
	return s, true
}

// Add implements graphql.Cache.
func (q *PersistedQueries) Add(ctx context.Context, hash, query string) {
	q.local.Add(ctx, hash, query)
	if err := q.rdb.Set(ctx, q.k.apq(hash), query, q.ttl).Err(); err != nil {
		q.log.WarnContext(ctx, "store persisted query", slog.Any("error", err))
	}
}
