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
// reports why it cannot (RFC 9700 §4.14.2 refresh token rotation).
//
//	KEYS[1] the presented token's refresh record   KEYS[2] the session
//	KEYS[3] the new token's refresh record         KEYS[4] the user's session index
//	ARGV[1] now (ms)          ARGV[2] reuse grace window (ms)   ARGV[3] idle timeout (ms)
//	ARGV[4] the sealed pair   ARGV[5] new token's hash          ARGV[6] session id
//	ARGV[7] presented hash    ARGV[8] refresh key prefix of the user
//
// Returns {"ok"}, {"grace", sealed pair issued for this token}, {"reuse"},
// {"expired"} or {"invalid"}.
var rotateScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 'sid', 'used', 'child')
if not rec[1] or rec[1] ~= ARGV[6] then return {'invalid'} end
local sess = redis.call('HMGET', KEYS[2], 'rt', 'last', 'abs')
if not sess[1] then return {'invalid'} end
local now = tonumber(ARGV[1])
local function revoke()
  redis.call('DEL', ARGV[8] .. sess[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[4], ARGV[6])
end
if rec[2] then
  if now - tonumber(rec[2]) <= tonumber(ARGV[2]) then return {'grace', rec[3]} end
  revoke()
  return {'reuse'}
end
if sess[1] ~= ARGV[7] then
  revoke()
  return {'reuse'}
end
local abs = tonumber(sess[3])
local idle = tonumber(ARGV[3])
if now >= abs or now - tonumber(sess[2]) >= idle then
  revoke()
  return {'expired'}
end
redis.call('HSET', KEYS[1], 'used', now, 'child', ARGV[4])
redis.call('HSET', KEYS[3], 'sid', ARGV[6])
redis.call('PEXPIRE', KEYS[3], abs - now)
redis.call('HSET', KEYS[2], 'rt', ARGV[5], 'last', now)
redis.call('PEXPIRE', KEYS[2], math.min(idle, abs - now))
return {'ok'}
`)

// endScript ends sessions of one user: one session (ARGV[4]), or all but one
// (ARGV[3]), or all. It deletes each session and its current refresh record,
// and blacklists the caller's access token if KEYS[2] is given.
//
//	KEYS[1] the user's session index   KEYS[2] blacklist key of the caller's token (optional)
//	ARGV[1] session key prefix   ARGV[2] refresh key prefix
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
    local k = ARGV[1] .. sid
    local rt = redis.call('HGET', k, 'rt')
    if rt then redis.call('DEL', ARGV[2] .. rt) end
    if redis.call('DEL', k) == 1 then table.insert(ended, sid) end
    redis.call('ZREM', KEYS[1], sid)
  end
end
if KEYS[2] and tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
end
return ended
`)

// reissueScript gives a live session a new refresh token (the current one is
// deleted, so presenting it later is simply invalid, not "reuse") and
// blacklists the caller's access token.
//
//	KEYS[1] the session   KEYS[2] the new refresh record   KEYS[3] blacklist key of the caller's token
//	ARGV[1] refresh key prefix   ARGV[2] new token's hash   ARGV[3] session id
//	ARGV[4] now (ms)             ARGV[5] blacklist TTL (ms)
//
// Returns 1, or 0 if the session has ended.
var reissueScript = redis.NewScript(`
local sess = redis.call('HMGET', KEYS[1], 'rt', 'abs')
if not sess[1] then return 0 end
redis.call('DEL', ARGV[1] .. sess[1])
redis.call('HSET', KEYS[2], 'sid', ARGV[3])
redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(sess[2]) - tonumber(ARGV[4])))
redis.call('HSET', KEYS[1], 'rt', ARGV[2], 'last', ARGV[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
return 1
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
