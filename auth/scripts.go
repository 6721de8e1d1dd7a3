package auth

import "github.com/redis/go-redis/v9"

// The Lua scripts below each touch the keys of one user only, all hash-tagged
// with the user id, so each runs atomically on one Redis Cluster slot. Some
// keys are derived inside the script from a prefix passed in ARGV (a
// session's current refresh record, the sessions named by the index); they
// share the same hash tag, so they live in the same slot. Times are passed in
// by the caller (its injected clock), never read from Redis, so expiry logic
// is the same on a real Redis, a cluster and the embedded server.

// rotateScript consumes a refresh token and records its successor, or
// reports why it cannot (RFC 9700 §4.14.2 refresh token rotation). The
// session holds the hash of its one current token; rotated tokens are
// remembered in a capped sorted set (for reuse detection), and the pair
// minted for each is kept, sealed and bound to the client that rotated, for
// the grace window only.
//
//	KEYS[1] the session   KEYS[2] the session's used tokens   KEYS[3] the grace pair of the presented token
//	ARGV[1] now (ms)          ARGV[2] reuse grace window (ms)   ARGV[3] idle timeout (ms)
//	ARGV[4] the sealed pair   ARGV[5] new token's hash          ARGV[6] presented hash
//	ARGV[7] presented hash as remembered (short)                ARGV[8] the client's binding
//	ARGV[9] the user's credentials version (database)           ARGV[10] how many used tokens to remember
//
// Returns {"ok"}, {"grace", sealed pair issued for this token}, {"reuse"}
// (the session can then rotate no more: its current token is cleared),
// {"expired"}, {"stale"} (started on older credentials) or {"invalid"}.
var rotateScript = redis.NewScript(`
local sess = redis.call('HMGET', KEYS[1], 'rt', 'last', 'abs', 'cv')
if not sess[1] then return {'invalid'} end
if tonumber(sess[4] or '0') < tonumber(ARGV[9]) then return {'stale'} end
local now = tonumber(ARGV[1])
if sess[1] ~= ARGV[6] then
  local used = redis.call('ZSCORE', KEYS[2], ARGV[7])
  if not used then return {'invalid'} end
  if now - tonumber(used) <= tonumber(ARGV[2]) then
    local g = redis.call('GET', KEYS[3])
    if g then
      local sp = string.find(g, ' ', 1, true)
      if sp and string.sub(g, 1, sp - 1) == ARGV[8] then return {'grace', string.sub(g, sp + 1)} end
    end
  end
  redis.call('HSET', KEYS[1], 'rt', '')
  return {'reuse'}
end
local abs = tonumber(sess[3])
local idle = tonumber(ARGV[3])
if now >= abs or now - tonumber(sess[2]) >= idle then return {'expired'} end
-- Trim before adding: the set never exceeds the cap, so Redis keeps it in
-- its compact encoding (zset-max-listpack-entries is 128).
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[10]))
redis.call('ZADD', KEYS[2], now, ARGV[7])
redis.call('PEXPIRE', KEYS[2], abs - now)
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[3], ARGV[8] .. ' ' .. ARGV[4], 'PX', ARGV[2])
end
redis.call('HSET', KEYS[1], 'rt', ARGV[5], 'last', now)
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs - now))
return {'ok'}
`)

// endScript ends sessions of one user: one session (ARGV[4]), or all but one
// (ARGV[3]), or all. It deletes each session and its used-token set, and
// blacklists the caller's access token if KEYS[2] is given.
//
//	KEYS[1] the user's session index   KEYS[2] blacklist key of the caller's token (optional)
//	ARGV[1] session key prefix   ARGV[2] used-token set prefix
//	ARGV[3] session id to keep ('' for none)   ARGV[4] the only session to end ('' for all)
//	ARGV[5] blacklist TTL (ms)
//
// Returns the ids of the sessions that were live and are now ended.
var endScript = redis.NewScript(`
local sids
if ARGV[4] ~= '' then sids = {ARGV[4]} else sids = redis.call('ZRANGE', KEYS[1], 0, -1) end
local ended = {}
for _, sid in ipairs(sids) do
  if sid ~= ARGV[3] then
    redis.call('DEL', ARGV[2] .. sid)
    if redis.call('DEL', ARGV[1] .. sid) == 1 then table.insert(ended, sid) end
    redis.call('ZREM', KEYS[1], sid)
  end
end
if KEYS[2] and tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
end
return ended
`)

// touchScript records that a session was used: it moves last-used and the
// idle expiry forward, never past the absolute expiry, and never brings an
// ended session back.
//
//	KEYS[1] the session   ARGV[1] now (ms)   ARGV[2] idle timeout (ms)
var touchScript = redis.NewScript(`
local abs = redis.call('HGET', KEYS[1], 'abs')
if not abs then return 0 end
local now = tonumber(ARGV[1])
if now <= tonumber(redis.call('HGET', KEYS[1], 'last') or 0) then return 1 end
redis.call('HSET', KEYS[1], 'last', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.min(tonumber(ARGV[2]), tonumber(abs) - now)))
return 1
`)
