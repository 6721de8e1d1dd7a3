# deploy/topology-lib.sh: the functions deploy/topology.sh drives the
# topology with (sourced by it; it uses that script's settings and state:
# WORK, NG, RUN, FRONT, PG_URL, DB, CHECKS, FAILURES, BOB_ACCESS and the
# load settings).
# shellcheck shell=bash

step() { printf '\n==> [%3ss] %s\n' "$(($(date +%s) - START_TS))" "$*"; }
pass() { CHECKS=$((CHECKS + 1)); printf '  ok    %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILURES+=("$*"); printf '  FAIL  %s\n' "$*"; }
die() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
# check NAME GOT WANT
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# jfield PATH: the value at a dotted path ("data.login.user.id",
# "errors.0.extensions.code") of the JSON on stdin, or "" if absent.
jfield() {
  python3 -c '
import json, sys
try:
    v = json.load(sys.stdin)
except ValueError:
    v = None
for k in sys.argv[1].split("."):
    if isinstance(v, list) and k.isdigit() and int(k) < len(v):
        v = v[int(k)]
    elif isinstance(v, dict):
        v = v.get(k)
    else:
        v = None
print("" if v is None else json.dumps(v) if isinstance(v, (bool, dict, list)) else v)
' "$1"
}

# gql ADDR TOKEN QUERY [VARIABLES [CURL_ARG...]]: POST a GraphQL operation,
# print the body.
gql() {
  local addr=$1 token=$2 query=$3 vars=${4:-'{}'}
  local hdr=(-H 'Content-Type: application/json')
  [ -n "$token" ] && hdr+=(-H "Authorization: Bearer $token")
  hdr+=("${@:5}") # more curl arguments: headers, --interface, -D FILE
  python3 -c 'import json, sys; print(json.dumps({"query": sys.argv[1], "variables": json.loads(sys.argv[2])}))' "$query" "$vars" |
    curl -sS -m 10 "${hdr[@]}" --data-binary @- "http://$addr/query" || true
}

# wait_exit PID SECONDS: whether the process is gone within SECONDS.
wait_exit() {
  for _ in $(seq $(($2 * 10))); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# wait_routed ADDR NAME: nginx keeps an instance it saw fail out of
# rotation for fail_timeout (10s); wait until it sends ADDR requests again.
wait_routed() {
  local i
  for i in $(seq 150); do
    curl -s -o /dev/null -H "X-Request-ID: back-$RUN-$2-$i" "http://$FRONT/readyz" || true
    if grep "rid=back-$RUN-$2-$i " "$NG/access.log" | grep -q "upstream=$1"; then
      pass "nginx routes to instance $2 again"
      return 0
    fi
    sleep 0.1
  done
  fail "nginx did not route to instance $2 within 15s"
}

# served_by RID_PREFIX COUNT: the instances that answered the COUNT
# requests whose ids start with RID_PREFIX, sorted, from nginx's log (the
# last address of each: "X, Y" means X failed and Y answered). It waits
# for the COUNT lines: nginx logs a request just after answering it.
served_by() {
  local lines
  for _ in $(seq 20); do
    lines=$(grep -F "rid=$1" "$NG/access.log" || true)
    [ "$(grep -c . <<<"$lines")" -ge "$2" ] && break
    sleep 0.1
  done
  sed -n 's/.* upstream=\(.*\) upstream_status=.*/\1/p' <<<"$lines" | sed 's/.*, //' | sort -u | paste -sd ' '
}

# db_accepts true|false: whether this run's database takes connections.
# false also ends the connections it has, so every instance loses its
# database at once while the PostgreSQL server goes on serving the others.
db_accepts() {
  local admin="$PG_URL/postgres?sslmode=disable"
  psql "$admin" -X -q -v ON_ERROR_STOP=1 -c "ALTER DATABASE $DB ALLOW_CONNECTIONS $1" >/dev/null
  [ "$1" = false ] || return 0
  psql "$admin" -X -q -v ON_ERROR_STOP=1 \
    -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB'" >/dev/null
  # pg_terminate_backend only signals: wait until the backends are gone.
  for _ in $(seq 50); do
    [ "$(psql "$admin" -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB'")" = 0 ] && return 0
    sleep 0.1
  done
  die "the connections to $DB did not end"
}

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

wait_ready() { # ADDR SECONDS
  for _ in $(seq $(($2 * 10))); do
    [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$1/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

# writer PHASE ID END_MS: createPost until END_MS. One line per request:
# request id, start and end (ms), HTTP status (000: no answer); the body
# goes to PHASE/<request id>.json.
writer() {
  local n=0 rid t0 code
  while [ "$(now_ms)" -lt "$3" ]; do
    n=$((n + 1))
    rid="load-$RUN-$1-w$2-$n"
    t0=$(now_ms)
    code=$(curl -s -m 10 -o "$WORK/$1/$rid.json" -w '%{http_code}' \
      -H 'Content-Type: application/json' -H "Authorization: Bearer $BOB_ACCESS" -H "X-Request-ID: $rid" \
      --data-binary "{\"query\": \"mutation(\$in: CreatePostInput!) { createPost(input: \$in) { id title } }\", \"variables\": {\"in\": {\"title\": \"$rid\", \"content\": \"load\"}}}" \
      "http://$FRONT/query") || true
    echo "$rid $t0 $(now_ms) ${code:-000}" >>"$WORK/$1/w$2.log"
  done
}

# write_load PHASE SIGNAL VICTIM VICTIM_PID VICTIM_PORT SURVIVOR_PORT:
# writers through nginx for LOAD_SECONDS; at KILL_AT the victim gets SIGNAL.
# Then every request is classified, and every acknowledged write is looked
# up in PostgreSQL.
write_load() {
  local phase=$1 sig=$2 victim=$3 vpid=$4 vport=$5 sport=$6
  step "write load through nginx ($phase): $LOAD_WRITERS writers for ${LOAD_SECONDS}s, instance $victim gets SIG$sig at ${KILL_AT}s"
  mkdir -p "$WORK/$phase"
  local start end signalled writers=()
  start=$(now_ms)
  end=$((start + LOAD_SECONDS * 1000))
  for w in $(seq "$LOAD_WRITERS"); do
    writer "$phase" "$w" "$end" &
    writers+=($!)
  done
  sleep "$KILL_AT"
  signalled=$(now_ms)
  kill -"$sig" "$vpid"
  echo "SIG$sig to instance $victim (pid $vpid) at +$((signalled - start))ms"
  wait "${writers[@]}"
  if [ "$sig" = TERM ]; then
    for _ in $(seq 100); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$vpid" 2>/dev/null; then fail "instance $victim still running 10s after SIGTERM"; else pass "instance $victim drained and exited after SIGTERM"; fi
    if grep -q 'not ready, still serving' "$WORK/$(echo "$victim" | tr AB ab).log"; then
      pass "instance $victim turned not-ready before draining"
    else
      fail "instance $victim did not announce its grace period"
    fi
  fi

  R=$(gql "$FRONT" "$BOB_ACCESS" '{ me { posts(first: 1) { totalCount } } }')
  [ -n "$(jfield data.me.posts.totalCount <<<"$R")" ] && pass "nginx still answers after SIG$sig" || fail "query after SIG$sig: $R"
  wait_ready "$FRONT" 2 && pass "/readyz through nginx is 200 with one instance" || fail "/readyz through nginx is not 200 after SIG$sig"

  # Classify every request: acknowledged (200 with an id and no error) or
  # failed (the client saw the failure). acked.tsv holds id and title.
  python3 - "$WORK/$phase" "$signalled" "$NG/access.log" "$RUN-$phase" "$vport" "$sport" >"$WORK/$phase/summary" <<'PY'
import glob, json, os, sys
work, killed, access_log, run, vport, sport = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
reqs = []
for path in glob.glob(os.path.join(work, "w*.log")):
    for line in open(path):
        rid, t0, t1, code = line.split()
        reqs.append((rid, int(t0), int(t1), code))
acked, failed = [], []
for rid, t0, t1, code in reqs:
    try:
        body = json.load(open(os.path.join(work, rid + ".json")))
    except (OSError, ValueError):
        body = {}
    post = ((body or {}).get("data") or {}).get("createPost") or {}
    if code == "200" and post.get("id") and post.get("title") == rid and not body.get("errors"):
        acked.append((rid, t0, t1, post["id"]))
    else:
        errs = body.get("errors") or [{}]
        why = "HTTP %s %s" % (code, (errs[0].get("extensions") or {}).get("code", "no answer" if code == "000" else ""))
        failed.append((rid, t0, t1, why.strip()))
with open(os.path.join(work, "acked.tsv"), "w") as f:
    for rid, _, _, pid in acked:
        f.write("%s\t%s\n" % (pid, rid))
with open(os.path.join(work, "failed.txt"), "w") as f:
    for rid, *_ in failed:
        f.write(rid + "\n")
# Which instance nginx picked, from its log: "X, Y" means X was tried first
# and the request went on to Y.
upstream = {}
for line in open(access_log):
    if "rid=load-%s-" % run in line:
        rid = line.split("rid=")[1].split()[0]
        upstream[rid] = line.split("upstream=")[1].split(" upstream_status=")[0]
before = [r for r in reqs if r[1] < killed]
after_ok = sum(1 for r in acked if r[1] >= killed)
late_failures = [f for f in failed if f[1] >= killed + 1000]
by = lambda rs, port: sum(1 for r in rs if upstream.get(r[0], "").startswith("127.0.0.1:" + port))
retried = sum(1 for v in upstream.values() if "," in v)
kinds = {}
for f in failed:
    kinds[f[3]] = kinds.get(f[3], 0) + 1
print("requests=%d" % len(reqs))
print("acked=%d" % len(acked))
print("failed=%d" % len(failed))
print("failed_kinds=%s" % (", ".join("%d x %s" % (n, k) for k, n in sorted(kinds.items())) or "none"))
print("failed_window_ms=%s" % (",".join(str(f[1] - killed) for f in failed) or "-"))
print("late_failures=%d" % len(late_failures))
print("before_kill=%d" % len(before))
print("before_kill_survivor=%d" % by(before, sport))
print("before_kill_victim=%d" % by(before, vport))
print("acked_after_kill=%d" % after_ok)
print("retried=%d" % retried)
PY
  summary() { sed -n "s/^$1=//p" "$WORK/$phase/summary"; }
  echo "$(summary requests) requests: $(summary acked) acknowledged, $(summary failed) failed ($(summary failed_kinds))"
  echo "before SIG$sig: $(summary before_kill) requests (nginx sent $(summary before_kill_survivor) to the survivor, $(summary before_kill_victim) to $victim)"
  echo "failed requests started at (ms from the signal): $(summary failed_window_ms)"
  echo "POSTs nginx moved on after an instance refused the connection (never sent to it): $(summary retried)"
  [ "$(summary before_kill_victim)" -gt 0 ] && pass "both instances took writes before SIG$sig" || fail "instance $victim took no writes before SIG$sig"
  [ "$(summary acked_after_kill)" -gt 0 ] && pass "$(summary acked_after_kill) writes acknowledged after SIG$sig" || fail "no write acknowledged after SIG$sig"
  check "no request started 1s or more after SIG$sig failed" "$(summary late_failures)" 0

  step "every acknowledged write of the $phase phase is in PostgreSQL"
  # Into a table, then one query each: missing, duplicated (a POST run twice
  # by a retry), and failed-but-applied (allowed: the client saw a failure).
  {
    echo "CREATE TEMP TABLE acked (id text, title text);"
    echo "COPY acked FROM STDIN;"
    cat "$WORK/$phase/acked.tsv"
    printf '\\.\n'
    echo "CREATE TEMP TABLE failed (title text);"
    echo "COPY failed FROM STDIN;"
    cat "$WORK/$phase/failed.txt"
    printf '\\.\n'
    echo "SELECT 'missing=' || count(*) FROM acked a LEFT JOIN posts p ON p.id = a.id AND p.title = a.title WHERE p.id IS NULL;"
    echo "SELECT 'duplicated=' || count(*) FROM (SELECT title FROM posts WHERE title LIKE 'load-$RUN-$phase-%' GROUP BY title HAVING count(*) > 1) d;"
    echo "SELECT 'failed_applied=' || count(*) FROM posts p JOIN failed f ON f.title = p.title;"
    echo "SELECT 'stored=' || count(*) FROM posts WHERE title LIKE 'load-$RUN-$phase-%';"
  } | psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 >"$WORK/$phase/verify.txt"
  verify() { sed -n "s/^$1=//p" "$WORK/$phase/verify.txt"; }
  echo "stored load posts: $(verify stored); acknowledged: $(summary acked); failed but applied: $(verify failed_applied)"
  check "acknowledged writes missing from PostgreSQL" "$(verify missing)" 0
  check "posts written twice (a POST retried after it reached an instance)" "$(verify duplicated)" 0
  SUMMARY+=("$phase: $(summary requests) createPost requests, instance $victim got SIG$sig at ${KILL_AT}s of ${LOAD_SECONDS}s; failed: $(summary failed) ($(summary failed_kinds)); acknowledged: $(summary acked), lost: $(verify missing), duplicated: $(verify duplicated)")
}
