package cache

import "strconv"

// keys builds every Redis key of the cache tiers; no key format appears
// anywhere else. Generation counters, pages and responses share the hash
// tag {c}, so a script can read a counter and the entry it names in one
// round trip on one cluster slot; user records are tagged by user, so they
// spread over the cluster.
//
// Every key has a TTL, so that a Redis shared with sessions never fills up
// with cache entries, and one that evicts (allkeys-lru) may drop any of
// them (see genLua for the counters).
//
//	<prefix>cache:user:{<id>}              a user record (JSON), 1 h
//	<prefix>cache:user:{<id>}:gen          bumped on every write of that user, 1 h + 1 min
//	<prefix>cache:{c}:users:gen            bumped on every user write, 24 h after the last
//	<prefix>cache:{c}:posts:gen            bumped on every post write, 24 h after the last
//	<prefix>cache:{c}:page:<pgen>:<hash>   a page of a post list, 5 min
//	<prefix>cache:{c}:count:<pgen>:<list>  the total of a post list, 5 min
//	<prefix>cache:{c}:resp:<ugen>:<pgen>:<hash>  a whole response, 1 min
//	<prefix>apq:<sha256>                   a persisted query's text, 24 h
type keys struct{ prefix string }

func (k keys) user(id string) string    { return k.prefix + "cache:user:{" + id + "}" }
func (k keys) userGen(id string) string { return k.user(id) + ":gen" }
func (k keys) usersGen() string         { return k.prefix + "cache:{c}:users:gen" }
func (k keys) postsGen() string         { return k.prefix + "cache:{c}:posts:gen" }

// pagePrefix, countPrefix and responsePrefix are completed inside scripts
// with the generation just read.
func (k keys) pagePrefix() string     { return k.prefix + "cache:{c}:page:" }
func (k keys) countPrefix() string    { return k.prefix + "cache:{c}:count:" }
func (k keys) responsePrefix() string { return k.prefix + "cache:{c}:resp:" }

func (k keys) page(gen int64, hash string) string {
	return k.pagePrefix() + strconv.FormatInt(gen, 10) + ":" + hash
}

func (k keys) count(gen int64, list string) string {
	return k.countPrefix() + strconv.FormatInt(gen, 10) + ":" + list
}

// userCount is the size of the users list under users generation gen.
func (k keys) userCount(gen int64) string {
	return k.userCountPrefix() + strconv.FormatInt(gen, 10)
}

func (k keys) userCountPrefix() string { return k.countPrefix() + "users:" }

func (k keys) response(ugen, pgen int64, hash string) string {
	return k.responsePrefix() + strconv.FormatInt(ugen, 10) + ":" + strconv.FormatInt(pgen, 10) + ":" + hash
}

func (k keys) apq(hash string) string { return k.prefix + "apq:" + hash }
