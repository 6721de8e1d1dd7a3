#!/usr/bin/env bash
# Load benchmarks with wrk on loopback, side by side in one run:
#
#   1. authenticated { me { id email } } vs anonymous { __typename } (and
#      authenticated { __typename }: the cost of authentication alone)
#   2. the feed posts(first: 100) { ... author { name } } over 100 authors:
#      SQL statements and Redis round trips cold and warm (extensions.cost)
#   3. posts(first: 20) with 1,000 and with 100,000 posts, without caches
#      (the keyset query itself) and with them
#   4. p99 latency of each under 32 connections, and the server's peak RSS
#   5. the tuned Apollo peer (../shared/peers, WORKERS=2 JWT_KEYOBJECT=1)
#      beside ours on the same data (100 users, 2,000 posts): me, the page
#      of 20 with authors cached and uncached, ours on SQLite and on
#      PostgreSQL ($DATABASE_URL, a fresh database per run; on loopback
#      give it ?sslmode=disable, or pgx negotiates TLS: see OPERATIONS.md).
#      Skipped, with a note, when the peer or PostgreSQL is not there.
#      Then clients that hang up mid-request (bench/hangup) against the
#      PostgreSQL server: the connections its pool opens, before and after.
#
# Servers run in production mode (no cost accounting) against the real Redis
# at $REDIS_URL (default redis://127.0.0.1:6379/0) and SQLite files; rate
# limits are raised far above the load (one client is the whole load, and
# production refuses "off": the limiter runs, leasing its budget), and
# /metrics listens on a free loopback port. Comparisons alternate the
# sides for BENCH_ROUNDS rounds (default 5) and compare medians: on a shared
# 2-core machine one run's noise exceeds the gaps being measured.
#
# Needs wrk (apt-get install wrk); the peer needs node and npm. Usage:
#   bash bench/run.sh [seconds per run]
#   BENCH_ONLY=peer bash bench/run.sh 3     # section 5 alone
#   BENCH_PEERS=DIR                         # the peers folder (default ../shared/peers, else /work/shared/peers)
#   BENCH_SERVER_ENV="APP_MAX_RUNNING_REQUESTS=off"   # settings of every server of ours (space-separated)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
WORK=$(mktemp -d)
declare -A PIDS
PG_DROP=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null
  for u in "${PG_DROP[@]}"; do psql -q "${u% *}" -c "DROP DATABASE IF EXISTS ${u##* }" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
go build -o "$WORK/server" ./server
go build -o "$WORK/seed" ./bench/seed
go build -o "$WORK/hangup" ./bench/hangup

# free PORT: fails when something already listens there (a server left
# from another run would be measured in place of the one started here)
free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is in use: stop what listens there first" >&2; exit 1
  fi
}
# start NAME PORT DB_URL EXTRA_ENV...: starts a server, waits until ready
start() {
  local name=$1 port=$2 db=$3; shift 3
  free "$port"
  env -i PATH="$PATH" HOME="$WORK" APP_ENV=production APP_ADDR=127.0.0.1:$port APP_REQUIRE_HTTPS=false \
    APP_JWT_SECRET=YmVuY2gtb25seS1zZWNyZXQtbmV2ZXItdXNlLWl0LWVsc2V3aGVyZQ== APP_ENCRYPTION_KEY=YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS1uZXZlci11c2UtaXQ= APP_SMTP_URL=smtp://127.0.0.1:9?tls=none APP_PUBLIC_URL=http://127.0.0.1 APP_REQUIRE_VERIFIED_EMAIL=false DATABASE_URL="$db" REDIS_URL="$REDIS_URL" \
    APP_REDIS_PREFIX="bench:$name:$RANDOM$RANDOM:" APP_RATE_API=1000000000/1m APP_RATE_REGISTER_IP=1000000/1m \
    APP_METRICS_ADDR=127.0.0.1:0 \
    APP_LOG_LEVEL=warn ${BENCH_SERVER_ENV:-} "$@" "$WORK/server" >"$WORK/$name.log" 2>&1 &
  PIDS[$name]=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$WORK/$name.log" >&2; echo "server $name did not start" >&2; exit 1
}
stop() { kill "${PIDS[$1]}"; wait "${PIDS[$1]}" 2>/dev/null || true; unset "PIDS[$1]"; }
rss() { awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/${PIDS[$1]}/status"; }
gql() { # PORT TOKEN QUERY -> response JSON
  curl -fs "http://127.0.0.1:$1/query" -H 'Content-Type: application/json' ${2:+-H "Authorization: Bearer $2"} \
    --data "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$3")"
}
token() { # PORT
  gql "$1" "" 'mutation { register(input: {email: "bench'$RANDOM$RANDOM'@example.com", password: "a bench password", name: "Bench"}) { accessToken } }' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["register"]["accessToken"])'
}
cost() { # PORT TOKEN QUERY -> "sql=N redis=N auth_redis=N"
  gql "$1" "$2" "$3" | python3 -c 'import json,sys; c=json.load(sys.stdin)["extensions"]["cost"]; print("sql=%d redis=%d auth_redis=%d" % (c["sqlStatements"], c["redisRoundTrips"], c["authRedisRoundTrips"]))'
}
declare -A RPS P99
load() { # NAME PORT TOKEN QUERY: runs wrk, records requests/s and p99 (ms)
  local out
  out=$(BENCH_TOKEN=$3 BENCH_QUERY=$4 wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/post.lua "http://127.0.0.1:$2/query" 2>&1)
  if grep -q "unexpected response" <<<"$out"; then echo "$out" >&2; exit 1; fi
  RPS[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P99[$1]=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$out")
  printf '  %-28s %10s req/s   p99 %8s ms\n' "$1" "${RPS[$1]}" "${P99[$1]}"
}
ROUNDS=${BENCH_ROUNDS:-5}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# compare NAME PORT TOKEN QUERY [NAME PORT TOKEN QUERY]...: alternates the
# sides for $ROUNDS rounds; sets each side's RPS/P99 to its median, and
# ROUNDS_OF[B/A] to the per-round ratios of the second side to the first.
declare -A ROUNDS_OF
compare() {
  local names=() ports=() tokens=() queries=()
  while [ $# -gt 0 ]; do names+=("$1"); ports+=("$2"); tokens+=("$3"); queries+=("$4"); shift 4; done
  local i n round
  # Warm-up, discarded: a fresh process's first seconds (heap growth,
  # connection pools, caches) are not what any side is measured on.
  for i in "${!names[@]}"; do
    BENCH_TOKEN=${tokens[$i]} BENCH_QUERY=${queries[$i]} wrk -t"$THREADS" -c"$CONNS" -d3s -s bench/post.lua "http://127.0.0.1:${ports[$i]}/query" >/dev/null 2>&1
  done
  local ratios=()
  for round in $(seq "$ROUNDS"); do
    for i in "${!names[@]}"; do load "${names[$i]}#$round" "${ports[$i]}" "${tokens[$i]}" "${queries[$i]}"; done
    ratios+=("$(ratio "${RPS[${names[1]}#$round]}" "${RPS[${names[0]}#$round]}")")
  done
  for n in "${names[@]}"; do
    local r=() p=()
    for round in $(seq "$ROUNDS"); do r+=("${RPS[$n#$round]}"); p+=("${P99[$n#$round]}"); done
    RPS[$n]=$(median "${r[@]}"); P99[$n]=$(median "${p[@]}")
  done
  ROUNDS_OF[${names[1]}/${names[0]}]="${ratios[*]}"
}
ratio() { python3 -c "print('%.0f%%' % (100*float('$1')/float('$2')))"; }

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(go env GOVERSION); redis $(redis-server --version | awk '{print $3}' | cut -d= -f2); wrk -t$THREADS -c$CONNS -d${DURATION}s${BENCH_SERVER_ENV:+; ours with $BENCH_SERVER_ENV}"
DB1K="sqlite:$WORK/posts1k.db"; DB100K="sqlite:$WORK/posts100k.db"
if [ "${BENCH_ONLY:-}" != peer ]; then
  "$WORK/seed" -database-url "$DB1K" -users 100 -posts 1000
  "$WORK/seed" -database-url "$DB100K" -users 100 -posts 100000
fi
NOCACHE=(APP_CACHE_RESPONSE_TTL=0 APP_CACHE_PAGE_TTL=0 APP_CACHE_USER_TTL=0)

FEED='{ posts(first: 100) { edges { node { title author { name } } } } }'
PAGE='{ posts(first: 20) { edges { cursor node { id title createdAt } } pageInfo { hasNextPage endCursor } } }'
ME='{ me { id email } }'

if [ "${BENCH_ONLY:-}" != peer ]; then
echo; echo "== 2: what the feed costs (APP_DEBUG_COST=true), 100 posts by 100 authors"
for tiers in all no_response_tier; do
  extra=(APP_DEBUG_COST=true); [ $tiers = no_response_tier ] && extra+=(APP_CACHE_RESPONSE_TTL=0)
  start cost 18190 "$DB1K" "${extra[@]}"; T=$(token 18190); sleep 1
  echo "  $tiers: cold $(cost 18190 "$T" "$FEED"); warm $(cost 18190 "$T" "$FEED"); me warm $(cost 18190 "$T" "$ME" >/dev/null; cost 18190 "$T" "$ME")"
  stop cost
done

echo; echo "== 1, 4: one server, all cache tiers on"
start main 18191 "$DB1K"; T=$(token 18191); sleep 1
compare typename 18191 "" '{ __typename }' me 18191 "$T" "$ME" typename_authenticated 18191 "$T" '{ __typename }'
load feed 18191 "$T" "$FEED"
load page_cached 18191 "$T" "$PAGE"
RSS_MAIN=$(rss main)
echo "  peak RSS: $RSS_MAIN"
stop main

echo; echo "== 2: the feed with the user and page tiers only"
start tiers 18192 "$DB1K" APP_CACHE_RESPONSE_TTL=0; T=$(token 18192); sleep 1
# a warm-up run: a server's first seconds under load (its heap growing,
# its statement caches and tiers filling) put its p99 some 20 ms higher
load feed_warmup 18192 "$T" "$FEED" >/dev/null
load feed_no_response_tier 18192 "$T" "$FEED"
stop tiers

echo; echo "== 3: posts(first: 20) on 1,000 vs 100,000 posts, two servers side by side"
NOCACHE=(APP_CACHE_RESPONSE_TTL=0 APP_CACHE_PAGE_TTL=0 APP_CACHE_USER_TTL=0)
start p1k 18193 "$DB1K" "${NOCACHE[@]}"; start p100k 18194 "$DB100K" "${NOCACHE[@]}"
T1=$(token 18193); T2=$(token 18194); sleep 1
compare page_1k_uncached 18193 "$T1" "$PAGE" page_100k_uncached 18194 "$T2" "$PAGE"
RSS_100K=$(rss p100k)
stop p1k; stop p100k
start c1k 18195 "$DB1K"; start c100k 18196 "$DB100K"
T1=$(token 18195); T2=$(token 18196); sleep 1
compare page_1k_cached 18195 "$T1" "$PAGE" page_100k_cached 18196 "$T2" "$PAGE"
stop c1k; stop c100k

fi

# == 5: the peer beside ours
PEER_URLS=() PEER_DIR=${BENCH_PEERS:-}
if [ -z "$PEER_DIR" ]; then
  for d in ../shared/peers /work/shared/peers; do [ -d "$d/apollo" ] && { PEER_DIR=$d; break; }; done
fi
PAGE20='{ posts(first: 20) { edges { node { id title author { name } } } } }'
PEER_PAGE20='{ posts(first: 20) { id title author { name } } }'
PG_URL=${DATABASE_URL:-}
echo; echo "== 5: the tuned Apollo peer beside ours, 100 users and 2,000 posts"
DB2K="sqlite:$WORK/posts2k.db"
"$WORK/seed" -database-url "$DB2K" -users 100 -posts 2000
DBPG=""
if [ -n "$PG_URL" ] && command -v psql >/dev/null; then
  name=bench_$RANDOM$RANDOM
  base=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/postgres")))' "$PG_URL")
  DBPG=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$PG_URL" "$name")
  psql -q "$base" -c "CREATE DATABASE $name" >/dev/null
  PG_DROP+=("$base $name")
  "$WORK/seed" -database-url "$DBPG" -users 100 -posts 2000
else
  echo "  PostgreSQL: skipped (set DATABASE_URL=postgres://... and install psql)"
fi
PEER_PORT=18290
if [ -n "$PEER_DIR" ] && command -v npm >/dev/null; then
  free "$PEER_PORT"
  cp -r "$PEER_DIR" "$WORK/peers"
  # a peers folder that was installed already (node_modules) is used as it is:
  # npm ci would rebuild better-sqlite3 from source (minutes on 2 cores)
  (cd "$WORK/peers/apollo" && { [ -d node_modules/better-sqlite3/build ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null; } &&
    SQLITE_PATH="$WORK/peer.db" node seed.js >/dev/null)
  (cd "$WORK/peers/apollo" && exec env -i PATH="$PATH" HOME="$WORK" NODE_ENV=production PORT=$PEER_PORT HOST=127.0.0.1 \
    REDIS_URL="$REDIS_URL" SQLITE_PATH="$WORK/peer.db" JWT_SECRET=bench-secret WORKERS=2 JWT_KEYOBJECT=1 node server.js >"$WORK/peer.log" 2>&1) &
  PIDS[peer]=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PEER_PORT/query" -H 'Content-Type: application/json' --data '{"query":"{__typename}"}' >/dev/null 2>&1 && break; sleep 0.1; done
  PT=$(cd "$WORK/peers/apollo" && JWT_SECRET=bench-secret node mint-token.js 1 24h)
else
  echo "  the Apollo peer: skipped (no ../shared/peers/apollo, or no npm)"
fi
# ours: caches on (me, the cached page) and off (the uncached page), SQLite and PostgreSQL
start s2k 18197 "$DB2K"; start s2k_nc 18198 "$DB2K" "${NOCACHE[@]}"
T1=$(token 18197); T2=$(token 18198)
if [ -n "$DBPG" ]; then start pg_nc 18199 "$DBPG" "${NOCACHE[@]}" APP_METRICS_ADDR=127.0.0.1:18299; T3=$(token 18199); fi
sleep 1
opened() { curl -fs http://127.0.0.1:18299/metrics | awk '/^authql_db_connections_opened_total/ {print $2}'; }
[ -n "$DBPG" ] && { load pg_warmup 18199 "$T3" "$PAGE20" >/dev/null; PG_OPENED0=$(opened); }
if [ -n "${PT:-}" ]; then
  compare peer_me $PEER_PORT "$PT" "$ME" ours_me 18197 "$T1" "$ME"
  compare peer_page $PEER_PORT "$PT" "$PEER_PAGE20" ours_page_cached 18197 "$T1" "$PAGE20"
  compare peer_page2 $PEER_PORT "$PT" "$PEER_PAGE20" ours_page_uncached 18198 "$T2" "$PAGE20"
  if [ -n "$DBPG" ]; then compare peer_page3 $PEER_PORT "$PT" "$PEER_PAGE20" ours_page_uncached_pg 18199 "$T3" "$PAGE20"; fi
else
  load ours_page_uncached 18198 "$T2" "$PAGE20"
  if [ -n "$DBPG" ]; then load ours_page_uncached_pg 18199 "$T3" "$PAGE20"; fi
fi
if [ -n "$DBPG" ]; then
  echo "  PostgreSQL connections opened (authql_db_connections_opened_total): $PG_OPENED0 after a warm-up run, $(opened) after the measured runs (want: about unchanged)"
  # clients that abandon each request within 3 ms, most of them mid-request
  PG_OPENED1=$(opened); HUNG=$("$WORK/hangup" -url http://127.0.0.1:18199/query -token "$T3" -clients "$CONNS" -duration "${DURATION}s")
  echo "  $CONNS clients hanging up for ${DURATION} s ($HUNG): $PG_OPENED1 connections opened before, $(opened) after (want: unchanged)"
fi
echo
echo "== summary (medians of $ROUNDS alternating rounds)"
if [ "${BENCH_ONLY:-}" != peer ]; then
echo "target 1: me / __typename = ${RPS[me]} / ${RPS[typename]} req/s = $(ratio "${RPS[me]}" "${RPS[typename]}") (want >= 90%; rounds: ${ROUNDS_OF[me/typename]})"
echo "          authenticated / anonymous __typename = ${RPS[typename_authenticated]} / ${RPS[typename]} req/s = $(ratio "${RPS[typename_authenticated]}" "${RPS[typename]}")"
echo "target 2: see the feed costs above (want <= 2 SQL cold, 0 warm, auth_redis=0)"
echo "target 3: posts(first: 20) 100k / 1k = $(ratio "${RPS[page_100k_uncached]}" "${RPS[page_1k_uncached]}") without caches (${RPS[page_100k_uncached]} / ${RPS[page_1k_uncached]} req/s), $(ratio "${RPS[page_100k_cached]}" "${RPS[page_1k_cached]}") with them (want >= 90%)"
echo "target 4: p99 at $CONNS connections: __typename ${P99[typename]} ms, me ${P99[me]} ms, feed ${P99[feed]} ms (no response tier ${P99[feed_no_response_tier]} ms), posts(first: 20) ${P99[page_1k_uncached]} ms uncached / ${P99[page_1k_cached]} ms cached; peak RSS $RSS_MAIN (100k posts, uncached: $RSS_100K)"
fi
if [ -n "${PT:-}" ]; then
  echo "peer:     me ${RPS[ours_me]} / ${RPS[peer_me]} req/s = $(ratio "${RPS[ours_me]}" "${RPS[peer_me]}") (want >= 200%), p99 ${P99[ours_me]} / ${P99[peer_me]} ms"
  echo "          page cached ${RPS[ours_page_cached]} / ${RPS[peer_page]} = $(ratio "${RPS[ours_page_cached]}" "${RPS[peer_page]}") (want >= 300%), p99 ${P99[ours_page_cached]} / ${P99[peer_page]} ms"
  echo "          page uncached, SQLite ${RPS[ours_page_uncached]} / ${RPS[peer_page2]} = $(ratio "${RPS[ours_page_uncached]}" "${RPS[peer_page2]}") (want >= 150%), p99 ${P99[ours_page_uncached]} / ${P99[peer_page2]} ms"
  [ -n "$DBPG" ] && echo "          page uncached, PostgreSQL ${RPS[ours_page_uncached_pg]} / ${RPS[peer_page3]} = $(ratio "${RPS[ours_page_uncached_pg]}" "${RPS[peer_page3]}") (want >= 150%), p99 ${P99[ours_page_uncached_pg]} / ${P99[peer_page3]} ms"
fi
