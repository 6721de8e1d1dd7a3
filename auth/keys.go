package auth

import "github.com/authql/authql/ent/schema/pulid"

// keys builds every Redis key this package uses; no key format appears
// anywhere else. Everything that belongs to one user carries the user id as
// a hash tag ({...}), so a script or transaction over a user's sessions,
// refresh tokens and revocations touches a single Redis Cluster slot.
//
//	<prefix>session:{<uid>}:<sid>     hash: one session (device)
//	<prefix>sessions:{<uid>}          sorted set: the user's session ids by creation time
//	<prefix>used:{<uid>}:<sid>        sorted set: the session's newest 128 rotated refresh tokens (128 bits of
//	                                  their SHA-256), scored by when they were rotated: reuse detection
//	<prefix>grace:{<uid>}:<sha256>    string: the pair minted for a rotated token, sealed under the token and
//	                                  bound to the client that rotated it, for the reuse grace window only
//	<prefix>blacklist:{<uid>}:<jti>   string: a revoked access token, until it would expire
//	<prefix>revocations:log           sorted set: revocations still relevant, scored by when they stop mattering
//	                                  (they travel to every process on bus.Bus, topic "rev")
//	<prefix>revocations:epoch         string: when Redis last started empty (ms); no TTL
//
// Rate limits (github.com/go-redis/redis_rate prepends "rate:"; the buckets
// looked at before and charged after a check get it from ratePrefix). <ip>
// is an IPv4 address or an IPv6 prefix (/64 by default); <acct> is a hash
// of the account's e-mail:
//
//	rate:<prefix>rate_limit:{<uid>}              the user's API budget (query complexity)
//	rate:<prefix>rate_limit_ip:{<ip>}            an anonymous client address's API budget
//	rate:<prefix>login:{<acct>}                  failed password checks against one account (shared)
//	rate:<prefix>login:{<acct>}:<lane>           the same from one known device (d:<sha256>), address (a:<ip>) or session (s:<sid>)
//	rate:<prefix>login_ip:{<ip>}                 login attempts from one address
//	rate:<prefix>register_ip:{<ip>}              sign-ups from one address
//	rate:<prefix>refresh_session:{<uid>}:<sid>   refreshes of one session
//	rate:<prefix>refresh_ip:{<ip>}               refresh attempts from one address
//	<prefix>known:{<acct>}:<lane>                a device or address this account signed in from (string, TTL)
//	rate:<prefix>mfa:{<uid>}                     wrong two-factor codes against one account
//	<prefix>mfa_challenge:<sha256>               a pending two-factor sign-in: the user id (string, 5 min)
type keys struct{ prefix string }

// ratePrefix is what redis_rate puts before its keys; the buckets this
// package runs itself (gcraScript) use it too, so every rate limit shares
// one key space.
const ratePrefix = "rate:"

func (k keys) session(uid pulid.ID, sid string) string {
	return k.sessionPrefix(uid) + sid
}

// sessionPrefix is the session key without the session id, for scripts that
// walk a user's sessions.
func (k keys) sessionPrefix(uid pulid.ID) string {
	return k.prefix + "session:{" + string(uid) + "}:"
}

func (k keys) sessions(uid pulid.ID) string {
	return k.prefix + "sessions:{" + string(uid) + "}"
}

func (k keys) used(uid pulid.ID, sid string) string { return k.usedPrefix(uid) + sid }

// usedPrefix is the used-token set key without the session id, for the
// script that ends a user's sessions.
func (k keys) usedPrefix(uid pulid.ID) string { return k.prefix + "used:{" + string(uid) + "}:" }

func (k keys) grace(uid pulid.ID, hash string) string {
	return k.prefix + "grace:{" + string(uid) + "}:" + hash
}

func (k keys) blacklist(uid pulid.ID, jti string) string {
	return k.prefix + "blacklist:{" + string(uid) + "}:" + jti
}

func (k keys) rateLimit(uid pulid.ID) string { return k.prefix + "rate_limit:{" + string(uid) + "}" }

func (k keys) rateLimitIP(ip string) string { return k.prefix + "rate_limit_ip:{" + ip + "}" }

func (k keys) loginAccount(acct string) string { return ratePrefix + k.prefix + "login:{" + acct + "}" }

func (k keys) loginLane(acct, lane string) string { return k.loginAccount(acct) + ":" + lane }

func (k keys) known(acct, lane string) string { return k.prefix + "known:{" + acct + "}:" + lane }

func (k keys) loginIP(ip string) string { return k.prefix + "login_ip:{" + ip + "}" }

func (k keys) registerIP(ip string) string { return k.prefix + "register_ip:{" + ip + "}" }

func (k keys) mailIP(ip string) string { return k.prefix + "mail_ip:{" + ip + "}" }

func (k keys) mailAccount(acct string) string { return k.prefix + "mail_account:{" + acct + "}" }

func (k keys) refreshSession(uid pulid.ID, sid string) string {
	return ratePrefix + k.prefix + "refresh_session:{" + string(uid) + "}:" + sid
}

func (k keys) refreshIP(ip string) string { return k.prefix + "refresh_ip:{" + ip + "}" }

func (k keys) mfa(uid pulid.ID) string { return ratePrefix + k.prefix + "mfa:{" + string(uid) + "}" }

func (k keys) challenge(hash string) string { return k.prefix + "mfa_challenge:" + hash }

func (k keys) revocationLog() string { return k.prefix + "revocations:log" }

func (k keys) revocationEpoch() string { return k.prefix + "revocations:epoch" }
