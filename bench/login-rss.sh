#!/usr/bin/env bash
# Peak RSS under bursts of concurrent failing logins, at the production
# argon2id cost (m=19 MiB, t=2, p=1): BURSTS bursts (default 3) of CONNS
# (default 200) wrong-password logins released together, each burst once
# the previous one has been answered. Prints the codes the server answered
# with and its peak RSS (VmHWM).
#
# The server runs in production mode against the real Redis at $REDIS_URL
# (default redis://127.0.0.1:6379/0) and a SQLite file; the login rate
# limits are out of reach, so every attempt reaches the password hash.
#
# Usage: bash bench/login-rss.sh [connections] [bursts]
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-200}
BURSTS=${2:-3}
PORT=${BENCH_PORT:-18197}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

go build -o "$WORK/server" ./server
NOLIMIT=1000000000/1m # production refuses "off"
env -i PATH="$PATH" HOME="$WORK" APP_ENV=production APP_ADDR=127.0.0.1:$PORT APP_REQUIRE_HTTPS=false \
  APP_JWT_SECRET=YmVuY2gtb25seS1zZWNyZXQtbmV2ZXItdXNlLWl0LWVsc2V3aGVyZQ== APP_ENCRYPTION_KEY=YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS1uZXZlci11c2UtaXQ= APP_SMTP_URL=smtp://127.0.0.1:9?tls=none APP_PUBLIC_URL=http://127.0.0.1 APP_REQUIRE_VERIFIED_EMAIL=false DATABASE_URL="sqlite:$WORK/app.db" \
  REDIS_URL="$REDIS_URL" APP_REDIS_PREFIX="bench:login:$RANDOM$RANDOM:" APP_METRICS_ADDR=127.0.0.1:0 \
  APP_RATE_LOGIN_ACCOUNT=$NOLIMIT APP_RATE_LOGIN_KNOWN=$NOLIMIT APP_RATE_LOGIN_IP=$NOLIMIT APP_RATE_REGISTER_IP=$NOLIMIT \
  APP_LOG_LEVEL=error "$WORK/server" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
echo "machine: $(nproc) cores, $(go env GOVERSION); $CONNS concurrent failing logins x $BURSTS bursts"
echo "RSS after start: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status")"

python3 - "$PORT" "$CONNS" "$BURSTS" <<'EOF'
import collections, json, sys, threading, urllib.request, urllib.error
port, conns, bursts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
url = "http://127.0.0.1:%d/query" % port

def post(query):
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

post('mutation { register(input: {email: "victim@example.com", password: "a bench password", name: "V"}) { accessToken } }')
codes = collections.Counter()
lock = threading.Lock()
for b in range(bursts):
    barrier = threading.Barrier(conns)
    def one(i):
        barrier.wait()
        r = post('mutation { login(input: {email: "victim@example.com", password: "wrong password %d"}) { accessToken } }' % i)
        code = r.get("errors", [{}])[0].get("extensions", {}).get("code", "OK")
        with lock:
            codes[code] += 1
    threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
    for t in threads: t.start()
    for t in threads: t.join()
print("answers:", dict(codes))
EOF
echo "peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status")"
