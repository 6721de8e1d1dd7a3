// Package auth authenticates requests and keeps sessions: access tokens
// (JWT, tokens.go), sessions and rotating refresh tokens in Redis
// (sessions.go, rotate.go, end.go), the revocations every process keeps in
// memory (revocations.go), the database ledger of ended sessions
// (ledger.go), rate limits (ratelimit.go, loginlimit.go) and password
// hashing (password.go). The viewer rides in the context (viewer.go); the
// @auth and @hasRole directives decide on it (directive.go).
//
// It imports cache/bus, cache/memo, cache/rdb, ent and ent/schema/pulid;
// never cache, graph or server. graph and server import it.
package auth
