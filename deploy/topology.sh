#!/usr/bin/env bash
# deploy/topology.sh: the production topology as real processes on loopback,
# driven end to end. CI runs it (bash deploy/topology.sh); it needs go,
# nginx, redis-server/redis-cli, psql, curl and python3, and a PostgreSQL
# that accepts CREATE DATABASE at $TOPOLOGY_PG_URL.
#
#   (a TLS terminator: requests sent from 127.0.0.2)
#   nginx 127.0.0.1:18080 (deploy/nginx.conf, rendered for loopback)
#     -> instance A 127.0.0.1:18081 and instance B 127.0.0.1:18082
#        (APP_ENV=production, one JWT secret, one Redis key prefix)
#     -> Redis Cluster 127.0.0.1:7001-7003 (.ci/redis-cluster.sh)
#     -> PostgreSQL: a fresh database authql_topology_<run>, dropped at exit
#
# Through nginx it registers, logs in and posts; checks that a forged
# X-Forwarded-For sent to nginx is not taken as the client's address, that
# docker-compose.yml trusts only nginx and gives an instance time to drain,
# and that /metrics is off the API port; checks that a logout sent to A is
# refused by B at once; fans one post out to sockets on both instances;
# rotates a refresh token and checks that the old one
# is refused. It cuts the instances off their database: nginx must pass
# their 503s on, and both must serve through nginx right after it returns.
# Then it writes posts in a loop twice: once sending A a SIGTERM halfway
# (it turns not-ready, drains and exits; it is restarted), once killing B
# with SIGKILL halfway; after each, it checks in PostgreSQL that every
# acknowledged write exists, and none twice. It restarts both instances
# requiring HTTPS: the front's X-Forwarded-Proto: https is served, the
# same header from anyone else is refused. Last, with both instances
# stopped, nginx's own 502 must say OUTCOME_UNKNOWN.
# Everything it started is stopped at exit; it prints PASS or FAIL and
# exits non-zero on failure. KEEP=1 keeps the temp dir (logs) afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

FRONT=127.0.0.1:18080
INST_A=127.0.0.1:18081
INST_B=127.0.0.1:18082
METRICS_A=127.0.0.1:19081
METRICS_B=127.0.0.1:19082
# The TLS terminator in front of nginx, as nginx sees it: requests sent
# from this loopback address (curl --interface) stand for it; nginx.conf's
# "trusted front" lines are rendered with it. Requests from 127.0.0.1 are
# anybody else's.
FRONT_PEER=127.0.0.2
PG_URL=${TOPOLOGY_PG_URL:-postgres://postgres@127.0.0.1:5432}
LOAD_WRITERS=2 # concurrent createPost loops
LOAD_SECONDS=8 # how long they write
KILL_AT=3      # seconds into the load when instance B is killed
# Production defaults everywhere; the secret is fixed so both instances
# sign and verify alike (never use this one outside this script): 32 bytes,
# base64, as production requires.
JWT_SECRET=dG9wb2xvZ3ktb25seS1zZWNyZXQtbmV2ZXItdXNlLWl0LWVsc2V3aGVyZQ==
ENCRYPTION_KEY=dG9wb2xvZ3ktb25seS1lbmNyeXB0aW9uLWtleS1uZXZlci11c2UtaXQ=
# Mail goes to Mailpit when MAILPIT_BIN names it (.ci/run builds it), else
# to a loopback port nobody answers: mails then wait in the outbox, which
# is what a mail server that is down does to them.
SMTP_ADDR=127.0.0.1:18025
MAIL_API=127.0.0.1:18026
REUSE_GRACE_S=10 # APP_REFRESH_REUSE_GRACE's default, 10s

RUN=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
WORK=$(mktemp -d /tmp/authql-topology.XXXXXX)
DB=authql_topology_$RUN
PREFIX="topology:$RUN:"
NG=$WORK/nginx
PIDS=()            # server processes we started
STARTED_CLUSTER=0  # whether we started the Redis Cluster (then we stop it)
CREATED_DB=0
CHECKS=0
FAILURES=()
START_TS=$(date +%s)
SUMMARY=()

# step, check, gql, jfield, wait_ready, write_load and the like.
# shellcheck source=deploy/topology-lib.sh
. deploy/topology-lib.sh

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  jobs -p | xargs -r kill 2>/dev/null # writer loops, if interrupted
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  if [ -s "$NG/nginx.pid" ]; then
    local npid
    npid=$(cat "$NG/nginx.pid")
    kill -QUIT "$npid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$npid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$npid" 2>/dev/null
  fi
  # This run's Redis keys: they live on whichever master owns their slot.
  for port in 7001 7002 7003; do
    redis-cli -p "$port" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r -n 50 redis-cli -c -p "$port" unlink >/dev/null 2>&1
  done
  [ "$STARTED_CLUSTER" = 1 ] && .ci/redis-cluster.sh stop >/dev/null
  [ "$CREATED_DB" = 1 ] && psql "$PG_URL/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  if [ "$rc" != 0 ]; then
    for f in "$WORK/a.log" "$WORK/b.log" "$NG/error.log"; do
      [ -s "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
    done
  fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- bring the topology up -------------------------------------------------

step "preflight"
for tool in go nginx redis-server redis-cli psql curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
for addr in "$FRONT" "$INST_A" "$INST_B" "$METRICS_A" "$METRICS_B"; do
  port_free "$addr" || die "$addr is already in use"
done
chmod 755 "$WORK" # nginx workers (nobody when run as root) use temp dirs under it
echo "run $RUN, work dir $WORK"

step "build the server binary (CGO_ENABLED=0 -trimpath, as in the Dockerfile)"
CGO_ENABLED=0 go build -trimpath -o "$WORK/server" ./server
go build -o "$WORK/subs" ./bench/subs

step "Redis Cluster"
if ! redis-cli -p 7001 cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then STARTED_CLUSTER=1; fi
.ci/redis-cluster.sh start
REDIS_ADDRS=$(.ci/redis-cluster.sh addrs)

step "PostgreSQL database $DB"
psql "$PG_URL/postgres?sslmode=disable" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $DB"
CREATED_DB=1
DATABASE_URL="$PG_URL/$DB?sslmode=disable"

step "two server instances (APP_ENV=production)"
start_instance() { # NAME ADDR METRICS_ADDR [REQUIRE_HTTPS]
  # env -i: only what production would set, nothing inherited (a REDIS_URL
  # in the caller's environment would conflict with the cluster). nginx on
  # loopback is the trusted proxy. HTTPS is not required until the last
  # phase: most requests here come straight to nginx, with no TLS anywhere
  # (in production TLS ends at nginx or in front of it).
  # Each instance's /metrics has its own loopback port (production never
  # serves it on APP_ADDR, and the default 127.0.0.1:9090 fits one per host).
  env -i PATH="$PATH" HOME="$WORK" \
    APP_ENV=production APP_ADDR="$2" APP_JWT_SECRET="$JWT_SECRET" APP_ENCRYPTION_KEY="$ENCRYPTION_KEY" \
    APP_SMTP_URL="smtp://$SMTP_ADDR?tls=none" APP_PUBLIC_URL="http://$FRONT" APP_REQUIRE_VERIFIED_EMAIL=false \
    DATABASE_URL="$DATABASE_URL" APP_REDIS_CLUSTER_ADDRS="$REDIS_ADDRS" APP_REDIS_PREFIX="$PREFIX" \
    APP_TRUSTED_PROXIES=127.0.0.1 APP_REQUIRE_HTTPS="${4:-false}" APP_SHUTDOWN_GRACE=1s APP_METRICS_ADDR="$3" \
    "$WORK/server" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  disown $! # tracked in PIDS; no job notice when B is killed on purpose
}
start_instance a "$INST_A" "$METRICS_A"
PID_A=${PIDS[0]}
start_instance b "$INST_B" "$METRICS_B"
PID_B=${PIDS[1]}
if [ -n "${MAILPIT_BIN:-}" ] && [ -x "$MAILPIT_BIN" ]; then
  step "Mailpit at $SMTP_ADDR"
  "$MAILPIT_BIN" --smtp "$SMTP_ADDR" --listen "$MAIL_API" --database "$WORK/mailpit.db" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure --quiet >"$WORK/mailpit.log" 2>&1 &
  PIDS+=($!) # after A and B: PID_A and PID_B are PIDS[0] and PIDS[1]
  disown $!
fi
wait_ready "$INST_A" 30 || die "instance A is not ready (see its log)"
wait_ready "$INST_B" 30 || die "instance B is not ready (see its log)"
echo "instance A pid $PID_A at $INST_A, instance B pid $PID_B at $INST_B"

step "nginx at $FRONT (deploy/nginx.conf rendered for loopback)"
mkdir -p "$NG/tmp"
# The shared file's six marked lines, and only those, change; the two
# "trusted front" lines are uncommented, as an operator with a TLS
# terminator in front of nginx would.
sed -e "/# topology.sh: instance A\$/ s|app1:8080|$INST_A|" \
  -e "/# topology.sh: instance B\$/ s|app2:8080|$INST_B|" \
  -e "/# topology.sh: the front door\$/ s|listen 8080;|listen $FRONT;|" \
  -e "/# topology.sh: its temp dir\$/ s|/var/log/nginx/access.log|$NG/access.log|" \
  -e "/# topology.sh: the trusted front\$/ s|^\( *\)# \(.*\)192\.0\.2\.10|\1\2$FRONT_PEER|" \
  deploy/nginx.conf >"$NG/authql.conf"
for want in "server $INST_A " "server $INST_B " "listen $FRONT;" "access_log $NG/access.log" \
  "    $FRONT_PEER 1;" "    set_real_ip_from $FRONT_PEER;"; do
  [ "$(grep -cF "$want" "$NG/authql.conf")" = 1 ] || die "rendering deploy/nginx.conf: no line with '$want' (were its topology.sh markers edited?)"
done
if grep -qE 'app[12]:8080|listen 8080;|/var/log/nginx|192\.0\.2\.10' "$NG/authql.conf"; then die "rendering deploy/nginx.conf: a docker-compose address is left"; fi
# The process-level settings that the nginx image's own nginx.conf provides
# under docker-compose.
cat >"$NG/nginx.conf" <<EOF
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 512; }
http {
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    include authql.conf;
}
EOF
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" -t -q || die "nginx -t refused the rendered configuration"
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log"
wait_ready "$FRONT" 10 || die "/readyz through nginx did not answer 200"
pass "/readyz answers 200 through nginx"

# --- accounts, sessions and posts through nginx ----------------------------

PW="correct horse battery staple"
AUTH='accessToken refreshToken user { id }'

step "register, log in and post through nginx"
R=$(gql "$FRONT" "" "mutation(\$in: RegisterInput!) { register(input: \$in) { $AUTH } }" \
  "{\"in\": {\"email\": \"ann-$RUN@example.com\", \"password\": \"$PW\", \"name\": \"Ann\"}}")
ANN_ID=$(jfield data.register.user.id <<<"$R")
ANN_ACCESS=$(jfield data.register.accessToken <<<"$R")
ANN_REFRESH=$(jfield data.register.refreshToken <<<"$R")
[ -n "$ANN_ACCESS" ] && [ -n "$ANN_REFRESH" ] || die "register through nginx: $R"
pass "register: user $ANN_ID"
R=$(gql "$FRONT" "" "mutation(\$in: LoginInput!) { login(input: \$in) { $AUTH } }" \
  "{\"in\": {\"email\": \"ann-$RUN@example.com\", \"password\": \"$PW\"}}")
PHONE_ACCESS=$(jfield data.login.accessToken <<<"$R")
PHONE_REFRESH=$(jfield data.login.refreshToken <<<"$R")
check "login starts a second session" "$(jfield data.login.user.id <<<"$R")" "$ANN_ID"
for i in 1 2 3; do
  R=$(gql "$FRONT" "$ANN_ACCESS" 'mutation($in: CreatePostInput!) { createPost(input: $in) { id } }' \
    "{\"in\": {\"title\": \"Post $i\", \"content\": \"Hello from the topology\"}}")
  [ -n "$(jfield data.createPost.id <<<"$R")" ] || fail "createPost $i: $R"
done
R=$(gql "$FRONT" "$ANN_ACCESS" '{ me { posts(first: 10) { totalCount } } }')
check "three posts created and listed" "$(jfield data.me.posts.totalCount <<<"$R")" 3

step "the client address is nginx's peer, not a forged X-Forwarded-For"
# deploy/nginx.conf must replace the header, not append to it: the app
# trusts nginx, so a hop forged before nginx's would be taken as the client.
R=$(python3 -c 'import json, sys; print(json.dumps({"query": "mutation($in: LoginInput!) { login(input: $in) { accessToken } }", "variables": {"in": {"email": sys.argv[1], "password": sys.argv[2]}}}))' "ann-$RUN@example.com" "$PW" |
  curl -sS -m 10 -H 'Content-Type: application/json' -H 'X-Forwarded-For: 203.0.113.7' -H 'X-Real-IP: 203.0.113.8' \
    --data-binary @- "http://$FRONT/query" || true)
FORGED_ACCESS=$(jfield data.login.accessToken <<<"$R")
[ -n "$FORGED_ACCESS" ] || die "login with a forged X-Forwarded-For: $R"
R=$(gql "$FRONT" "$FORGED_ACCESS" '{ mySessions { ip current } }')
CUR_IP=$(python3 -c 'import json, sys; print(next((s["ip"] for s in json.load(sys.stdin)["data"]["mySessions"] if s["current"]), ""))' <<<"$R" || true)
check "the session records nginx's peer (127.0.0.1), not the forged 203.0.113.7" "$CUR_IP" 127.0.0.1
gql "$FRONT" "$FORGED_ACCESS" 'mutation { logout }' >/dev/null
# The compose file trusts exactly nginx's fixed address, and nothing wider.
COMPOSE_CHECK=$(python3 - docker-compose.yml <<'PY'
import re, sys
text = open(sys.argv[1]).read()
trusted = re.findall(r'^\s*APP_TRUSTED_PROXIES:\s*"?([^"\s#]+)', text, re.M)
nginx = re.search(r'^  nginx:\n(?:    .*\n|\n)*?\s+ipv4_address:\s*([0-9.]+)', text, re.M)
if len(trusted) != 1 or not nginx:
    print("cannot find APP_TRUSTED_PROXIES once and nginx's ipv4_address")
elif trusted[0] != nginx.group(1):
    print("APP_TRUSTED_PROXIES=%s, nginx's address is %s" % (trusted[0], nginx.group(1)))
else:
    print("ok")
PY
)
check "docker-compose.yml trusts nginx's fixed address only" "$COMPOSE_CHECK" ok
# An instance stopped by compose has its grace period and its drain before
# SIGKILL: stop_grace_period above APP_SHUTDOWN_GRACE + APP_SHUTDOWN_TIMEOUT
# (as set there, else their production defaults, 5s and 20s).
COMPOSE_CHECK=$(python3 - docker-compose.yml <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def seconds(name, default):
    m = re.findall(r'^\s*%s:\s*"?(\d+)s"?\s*$' % name, text, re.M)
    return int(m[0]) if m else default
stop = re.findall(r'^  stop_grace_period:\s*(\d+)s\s*$', text, re.M)
need = seconds("APP_SHUTDOWN_GRACE", 5) + seconds("APP_SHUTDOWN_TIMEOUT", 20)
if len(stop) != 1:
    print("no stop_grace_period (in whole seconds) for the app instances")
elif int(stop[0]) <= need:
    print("stop_grace_period is %ss, the app may need %ss" % (stop[0], need))
else:
    print("ok")
PY
)
check "docker-compose.yml lets an instance drain before SIGKILL" "$COMPOSE_CHECK" ok

step "/metrics is on each instance's metrics address, not on its API address"
check "GET /metrics on A's APP_ADDR" "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$INST_A/metrics")" 404
check "GET /metrics on A's APP_METRICS_ADDR" "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$METRICS_A/metrics")" 200

step "logout on instance A is honoured by instance B at once"
R=$(gql "$INST_B" "$PHONE_ACCESS" '{ me { id } }')
check "B accepts the second session's token before" "$(jfield data.me.id <<<"$R")" "$ANN_ID"
R=$(gql "$INST_A" "$PHONE_ACCESS" 'mutation { logout }')
check "logout sent straight to A" "$(jfield data.logout <<<"$R")" true
R=$(gql "$INST_B" "$PHONE_ACCESS" '{ me { id } }')
check "B refuses the logged-out token right after" "$(jfield errors.0.extensions.code <<<"$R")" UNAUTHENTICATED
for i in 1 2 3 4; do
  R=$(gql "$FRONT" "$PHONE_ACCESS" '{ me { id } }')
  check "nginx (either instance) refuses it, try $i" "$(jfield errors.0.extensions.code <<<"$R")" UNAUTHENTICATED
done
R=$(gql "$FRONT" "" 'mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }' "{\"t\": \"$PHONE_REFRESH\"}")
check "the ended session's refresh token is refused" "$(jfield errors.0.extensions.code <<<"$R")" UNAUTHENTICATED
R=$(gql "$FRONT" "$ANN_ACCESS" '{ me { id } }')
check "the first session lives on" "$(jfield data.me.id <<<"$R")" "$ANN_ID"

step "one post fans out to live sockets on both instances"
# bench/subs opens 16 sockets of Ann's, in turn on A and on B (8 each,
# under APP_WS_MAX_CONNECTIONS_PER_USER), creates a post through A, and
# fails if a socket on either instance misses it.
if OUT=$("$WORK/subs" -url "http://$INST_A,http://$INST_B" -token "$ANN_ACCESS" -sockets 16 -events 1 2>&1); then
  pass "a post created through A reaches all 16 sockets, 8 on A and 8 on B"
else
  fail "fan-out over both instances: $OUT"
fi
sed 's/^/        /' <<<"$OUT"

step "refresh token rotation through nginx"
ROTATED_AT=$(now_ms)
R=$(gql "$FRONT" "" "mutation(\$t: String!) { refresh(refreshToken: \$t) { $AUTH } }" "{\"t\": \"$ANN_REFRESH\"}")
ACCESS2=$(jfield data.refresh.accessToken <<<"$R")
REFRESH2=$(jfield data.refresh.refreshToken <<<"$R")
[ -n "$REFRESH2" ] && [ "$REFRESH2" != "$ANN_REFRESH" ] && pass "refresh returns a new pair" || fail "refresh: $R"
R=$(gql "$FRONT" "$ACCESS2" '{ me { id } }')
check "the new access token works" "$(jfield data.me.id <<<"$R")" "$ANN_ID"
R=$(gql "$FRONT" "" "mutation(\$t: String!) { refresh(refreshToken: \$t) { $AUTH } }" "{\"t\": \"$ANN_REFRESH\"}")
check "the old token again within the grace window: the same pair, not a second one" \
  "$(jfield data.refresh.refreshToken <<<"$R")" "$REFRESH2"
R=$(gql "$FRONT" "" "mutation(\$t: String!) { refresh(refreshToken: \$t) { $AUTH } }" "{\"t\": \"$REFRESH2\"}")
ACCESS3=$(jfield data.refresh.accessToken <<<"$R")
REFRESH3=$(jfield data.refresh.refreshToken <<<"$R")
[ -n "$REFRESH3" ] && pass "the new refresh token rotates in turn" || fail "second refresh: $R"
# The old token's refusal is checked after the write load, once the grace
# window (10s by default, not shortened here) has passed.

# --- writes while an instance dies -----------------------------------------

R=$(gql "$FRONT" "" "mutation(\$in: RegisterInput!) { register(input: \$in) { $AUTH } }" \
  "{\"in\": {\"email\": \"bob-$RUN@example.com\", \"password\": \"$PW\", \"name\": \"Bob\"}}")
BOB_ACCESS=$(jfield data.register.accessToken <<<"$R")
[ -n "$BOB_ACCESS" ] || die "register the load user: $R"

# --- a database outage ------------------------------------------------------

# Every instance answers 503 while the database is out, on purpose (nothing
# written, retry). nginx must pass those 503s on and must not count them as
# the instances failing: if it did, both would stay out of rotation for
# fail_timeout after the database came back, and nginx would answer 502.
step "a database outage: the instances' 503s pass through nginx, and both serve right after it"
db_accepts false
n=0
for i in $(seq 10); do
  code=$(curl -s -m 5 -o "$WORK/outage.json" -w '%{http_code}' -H "X-Request-ID: outage-$RUN-$i" "http://$FRONT/readyz" || true)
  [ "$code" = 503 ] && [ "$(jfield status <"$WORK/outage.json")" = unavailable ] && n=$((n + 1))
done
check "/readyz through nginx during the outage: the instances' own 503" "$n of 10" "10 of 10"
R=$(gql "$FRONT" "$BOB_ACCESS" 'mutation($in: CreatePostInput!) { createPost(input: $in) { id } }' \
  '{"in": {"title": "during the outage", "content": "never written"}}')
check "createPost during the outage: the app's SERVICE_UNAVAILABLE (nothing written), not nginx's 502" \
  "$(jfield errors.0.extensions.code <<<"$R")" SERVICE_UNAVAILABLE
db_accepts true
wait_ready "$INST_A" 10 && wait_ready "$INST_B" 10 || die "the instances did not recover from the outage (see their logs)"
n=0
for i in $(seq 6); do
  code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-Request-ID: recovered-$RUN-$i" "http://$FRONT/readyz" || true)
  [ "$code" = 200 ] && n=$((n + 1))
done
check "/readyz through nginx right after the outage" "$n of 6" "6 of 6"
check "both instances served them" "$(served_by "recovered-$RUN-" 6)" "$INST_A $INST_B"

# --- a graceful stop, then a crash, under write load --------------------------

# SIGTERM: A turns not-ready for its grace period while still serving, then
# drains in-flight requests and exits; nginx sends new requests to B.
write_load graceful TERM A "$PID_A" 18081 18082
step "instance A again"
start_instance a "$INST_A" "$METRICS_A"
PID_A=${PIDS[-1]}
wait_ready "$INST_A" 30 || die "instance A did not come back (see its log)"
wait_routed "$INST_A" A

# SIGKILL: B dies mid-request; what it acknowledged must survive.
write_load crash KILL B "$PID_B" 18082 18081

step "the old refresh token after the grace window"
wait_ms=$((ROTATED_AT + REUSE_GRACE_S * 1000 + 500 - $(now_ms)))
[ "$wait_ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
R=$(gql "$FRONT" "" "mutation(\$t: String!) { refresh(refreshToken: \$t) { $AUTH } }" "{\"t\": \"$ANN_REFRESH\"}")
check "the already used refresh token is refused as reuse" "$(jfield errors.0.extensions.reason <<<"$R")" REFRESH_TOKEN_REUSED
R=$(gql "$FRONT" "" "mutation(\$t: String!) { refresh(refreshToken: \$t) { $AUTH } }" "{\"t\": \"$REFRESH3\"}")
check "reuse ended the session: its newest refresh token is refused" "$(jfield errors.0.extensions.code <<<"$R")" UNAUTHENTICATED
R=$(gql "$FRONT" "$ACCESS3" '{ me { id } }')
check "and its access token too" "$(jfield errors.0.extensions.code <<<"$R")" UNAUTHENTICATED

# --- behind a TLS terminator -------------------------------------------------

# Production requires HTTPS, and TLS may end in front of nginx: then only
# that front's X-Forwarded-Proto (and X-Forwarded-For) may be believed.
step "instances requiring HTTPS behind a TLS terminator at $FRONT_PEER"
kill -TERM "$PID_A"
wait_exit "$PID_A" 10 || die "instance A did not exit after SIGTERM"
start_instance a "$INST_A" "$METRICS_A" true
PID_A=${PIDS[-1]}
start_instance b "$INST_B" "$METRICS_B" true
PID_B=${PIDS[-1]}
wait_ready "$INST_A" 30 && wait_ready "$INST_B" 30 || die "the instances requiring HTTPS are not ready (see their logs)"
wait_routed "$INST_A" A
wait_routed "$INST_B" B
LOGIN='mutation($in: LoginInput!) { login(input: $in) { accessToken } }'
CREDS="{\"in\": {\"email\": \"ann-$RUN@example.com\", \"password\": \"$PW\"}}"
AS_FRONT=(--interface "$FRONT_PEER" -H 'X-Forwarded-For: 203.0.113.9')
R=$(gql "$FRONT" "" "$LOGIN" "$CREDS" "${AS_FRONT[@]}" -H 'X-Forwarded-Proto: https' -D "$WORK/front.h")
FRONT_ACCESS=$(jfield data.login.accessToken <<<"$R")
[ -n "$FRONT_ACCESS" ] && pass "the front's https request is served" || fail "login through the front, https: $R"
grep -qi '^strict-transport-security:' "$WORK/front.h" && pass "and answered with HSTS, as HTTPS" || fail "no HSTS on the front's https request"
R=$(gql "$FRONT" "$FRONT_ACCESS" '{ mySessions { ip current } }' '{}' "${AS_FRONT[@]}" -H 'X-Forwarded-Proto: https')
CUR_IP=$(python3 -c 'import json, sys; print(next((s["ip"] for s in json.load(sys.stdin)["data"]["mySessions"] if s["current"]), ""))' <<<"$R" || true)
check "the session records the client the front names, 203.0.113.9" "$CUR_IP" 203.0.113.9
R=$(gql "$FRONT" "" "$LOGIN" "$CREDS" "${AS_FRONT[@]}" -H 'X-Forwarded-Proto: http')
check "the front's plain-http request is refused" "$(jfield errors.0.extensions.code <<<"$R")" HTTPS_REQUIRED
R=$(gql "$FRONT" "" "$LOGIN" "$CREDS" -H 'X-Forwarded-Proto: https')
check "X-Forwarded-Proto: https from anyone else is not believed" "$(jfield errors.0.extensions.code <<<"$R")" HTTPS_REQUIRED

# --- no instance at all -------------------------------------------------------

step "no instance answers: nginx's own 502 says the outcome is unknown"
kill -TERM "$PID_A" "$PID_B"
wait_exit "$PID_A" 10 && wait_exit "$PID_B" 10 || die "the instances did not exit after SIGTERM"
code=$(curl -s -m 10 -D "$WORK/none.h" -o "$WORK/none.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -H "X-Request-ID: none-$RUN" --data-binary '{"query": "mutation { logout }"}' "http://$FRONT/query" || true)
check "HTTP status" "$code" 502
check "its code (not SERVICE_UNAVAILABLE, which promises nothing was written)" \
  "$(jfield errors.0.extensions.code <"$WORK/none.json")" OUTCOME_UNKNOWN
check "its X-Request-ID" "$(sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *\([^[:space:]]*\).*/\1/p' "$WORK/none.h")" "none-$RUN"

# --- summary ----------------------------------------------------------------

step "summary"
echo "topology: nginx $FRONT -> A $INST_A + B $INST_B (production) -> Redis Cluster $REDIS_ADDRS + PostgreSQL $DB"
printf '  %s\n' "${SUMMARY[@]}"
echo "checks: $CHECKS, failed: ${#FAILURES[@]}, time: $(($(date +%s) - START_TS))s"
if [ "${#FAILURES[@]}" -gt 0 ]; then
  printf '  - %s\n' "${FAILURES[@]}"
  echo "FAIL"
  exit 1
fi
echo "PASS"
