package cache

// Observer is told whether each cache lookup found what it looked for. The
// server implements it with Prometheus; this package does not know about
// metrics. Access is called on request paths, from many goroutines, and
// must not block.
type Observer interface {
	// Access reports one lookup of one entry in a tier (one of Tiers): a
	// batch of n users is n accesses. A lookup that fails because Redis is
	// unreachable counts as a miss: the database answered it.
	Access(tier string, hit bool)
}

// The cache tiers Observer.Access names.
const (
	TierUserLocal     = "user_local"     // user records in this process
	TierUserRedis     = "user_redis"     // user records in Redis
	TierPage          = "page"           // pages of post lists
	TierCount         = "count"          // totals of the post and user lists
	TierResponseLocal = "response_local" // whole responses in this process
	TierResponse      = "response"       // whole responses in Redis
	TierAPQ           = "apq"            // automatic persisted queries
)

// TierNames lists every tier Access reports.
func TierNames() []string {
	return []string{TierUserLocal, TierUserRedis, TierPage, TierCount, TierResponseLocal, TierResponse, TierAPQ}
}

// NopObserver ignores every access; it is the default.
type NopObserver struct{}

var _ Observer = NopObserver{}

// Access implements Observer.
func (NopObserver) Access(string, bool) {}
