#!/usr/bin/env bash
# Load benchmarks with wrk on loopback, side by side in one run:
#
#   1. authenticated { me { id email } } vs anonymous { __typename }
#   2. the feed posts(first: 100) { ... author { name } } over 100 authors
#      (SQL statements and Redis round trips cold and warm, from extensions.cost)
#   3. posts(first: 20) with 1,000 and with 100,000 posts (caches off: the
#      keyset query itself; and with the caches)
#   4. p99 latency of each under 32 connections, and the server's peak RSS
#
# The server runs against the real Redis at $REDIS_URL (default
# redis://127.0.0.1:6379/0) and a SQLite file (or $BENCH_DATABASE_URL).
# Needs wrk (apt-get install wrk). Usage: bash bench/run.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
ADDR=127.0.0.1:18190
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
go build -o "$WORK/server" ./server
go build -o "$WORK/seed" ./bench/seed

# start DB_URL EXTRA_ENV... : starts the server, waits for it to be ready
start() {
  local db=$1; shift
  env -i PATH="$PATH" HOME="$WORK" APP_ENV=production APP_ADDR=$ADDR APP_REQUIRE_HTTPS=false \
    APP_JWT_SECRET=bench-secret-bench-secret-bench-secret-0123 DATABASE_URL="$db" REDIS_URL="$REDIS_URL" \
    APP_REDIS_PREFIX="bench:$RANDOM$RANDOM:" APP_RATE_API=off APP_RATE_REGISTER_IP=off APP_DEBUG_COST=true \
    APP_LOG_LEVEL=warn "$@" "$WORK/server" >"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -fs "http://$ADDR/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$WORK/server.log" >&2; echo "server did not start" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
gql() { # TOKEN QUERY -> response JSON
  curl -fs "http://$ADDR/query" -H 'Content-Type: application/json' ${1:+-H "Authorization: Bearer $1"} \
    --data "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$2")"
}
token() {
  gql "" 'mutation { register(input: {email: "bench'$RANDOM'@example.com", password: "a bench password", name: "Bench"}) { accessToken } }' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["accessToken"])'
}
cost() { # TOKEN QUERY -> "sql=N redis=N auth_redis=N"
  gql "$1" "$2" | python3 -c 'import json,sys; c=json.load(sys.stdin)["extensions"]["cost"]; print("sql=%d redis=%d auth_redis=%d" % (c["sqlStatements"], c["redisRoundTrips"], c["authRedisRoundTrips"]))'
}
# load NAME TOKEN QUERY: runs wrk, records requests/s and p99 (ms)
declare -A RPS P99
load() {
  local out
  out=$(BENCH_TOKEN=$2 BENCH_QUERY=$3 wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/post.lua "http://$ADDR/query" 2>&1)
  if grep -q "unexpected response" <<<"$out"; then echo "$out" >&2; exit 1; fi
  RPS[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P99[$1]=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$out")
  printf '  %-34s %10s req/s   p99 %8s ms\n' "$1" "${RPS[$1]}" "${P99[$1]}"
}
rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status"; }

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); go $(go env GOVERSION); redis $(redis-server --version | awk '{print $3}' | cut -d= -f2); wrk -t$THREADS -c$CONNS -d${DURATION}s"

DB1K="sqlite:$WORK/posts1k.db"; DB100K="sqlite:$WORK/posts100k.db"
if [ -n "${BENCH_DATABASE_URL:-}" ]; then echo "BENCH_DATABASE_URL is not supported with two sizes; using SQLite" >&2; fi
"$WORK/seed" -database-url "$DB1K" -users 100 -posts 1000
"$WORK/seed" -database-url "$DB100K" -users 100 -posts 100000

FEED='{ posts(first: 100) { edges { node { title author { name } } } } }'
PAGE='{ posts(first: 20) { edges { cursor node { id title createdAt } } pageInfo { hasNextPage endCursor } } }'

echo; echo "== 1, 2, 4: 1,000 posts, 100 authors, all cache tiers on"
start "$DB1K"
TOKEN=$(token)
sleep 1 # let the revocation subscription sync
echo "feed cost cold: $(cost "$TOKEN" "$FEED")"
echo "feed cost warm: $(cost "$TOKEN" "$FEED")"
load typename "" '{ __typename }'
load me "$TOKEN" '{ me { id email } }'
load feed "$TOKEN" "$FEED"
load page_1k_cached "$TOKEN" "$PAGE"
echo "  peak RSS: $(rss)"
RSS1=$(rss)
stop

echo; echo "== 2: the feed without the response tier (user and page tiers only)"
start "$DB1K" APP_CACHE_RESPONSE_TTL=0
TOKEN=$(token); sleep 1
echo "feed cost cold: $(cost "$TOKEN" "$FEED")"
echo "feed cost warm: $(cost "$TOKEN" "$FEED")"
load feed_no_response_tier "$TOKEN" "$FEED"
stop

echo; echo "== 3: posts(first: 20), caches off: the keyset query on 1,000 vs 100,000 posts"
for size in 1k 100k; do
  db=$DB1K; [ $size = 100k ] && db=$DB100K
  start "$db" APP_CACHE_RESPONSE_TTL=0 APP_CACHE_PAGE_TTL=0 APP_CACHE_USER_TTL=0
  TOKEN=$(token); sleep 1
  load "page_${size}_uncached" "$TOKEN" "$PAGE"
  [ $size = 100k ] && echo "  peak RSS: $(rss)"
  stop
done
start "$DB100K"; TOKEN=$(token); sleep 1
load page_100k_cached "$TOKEN" "$PAGE"
stop

ratio() { python3 -c "print('%.0f%%' % (100*float('$1')/float('$2')))"; }
echo
echo "== summary"
echo "target 1: me / __typename requests/s = $(ratio "${RPS[me]}" "${RPS[typename]}") (want >= 90%)"
echo "target 3: posts(first:20) 100k / 1k requests/s = $(ratio "${RPS[page_100k_uncached]}" "${RPS[page_1k_uncached]}") uncached, $(ratio "${RPS[page_100k_cached]}" "${RPS[page_1k_cached]}") cached (want >= 90%)"
echo "target 4: p99 typename ${P99[typename]} ms, me ${P99[me]} ms, feed ${P99[feed]} ms, page ${P99[page_1k_cached]} ms; peak RSS $RSS1"
