package cache

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/redis/go-redis/v9"
)

// PersistedQueries is the automatic-persisted-query store: query texts by
// their SHA-256, in Redis so that every instance knows a query any instance
// was sent, behind an in-process cache bounded by bytes. Entries are
// content-addressed (the GraphQL handler checks the hash, and stores a
// query only once it parsed and validated), so the local copy can never be
// stale.
type PersistedQueries struct {
	rdb   redis.UniversalClient
	k     keys
	local *Weighted[string]
	ttl   time.Duration
	log   *slog.Logger
	obs   Observer
}

var _ graphql.Cache[string] = (*PersistedQueries)(nil)

// NewPersistedQueries returns the store; queries live ttl in Redis. Its
// hits and misses are reported to obs as the "apq" tier (log and obs may be
// nil).
func NewPersistedQueries(rdb redis.UniversalClient, prefix string, ttl time.Duration, log *slog.Logger, obs Observer) *PersistedQueries {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = NopObserver{}
	}
	local := NewWeighted(apqLocalBytes, func(hash, query string) int { return len(hash) + len(query) + entryOverhead })
	return &PersistedQueries{rdb: rdb, k: keys{prefix}, local: local, ttl: ttl, log: log, obs: obs}
}

// apqLocalBytes bounds the in-process copy of persisted queries: a few
// thousand ordinary queries; Redis holds the rest.
const apqLocalBytes = 4 << 20

// entryOverhead is about what an entry costs besides its bytes (string
// headers, the cache's node and hash-table slot).
const entryOverhead = 64

// Get implements graphql.Cache. gqlgen asks only when a request sends a
// hash without its query, so a miss is a client told to send the query.
func (q *PersistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	s, ok := q.get(ctx, hash)
	q.obs.Access(TierAPQ, ok)
	return s, ok
}

func (q *PersistedQueries) get(ctx context.Context, hash string) (string, bool) {
	if s, ok := q.local.Get(ctx, hash); ok {
		return s, true
	}
	s, err := q.rdb.Get(ctx, q.k.apq(hash)).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
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
