#!/usr/bin/env bash
# Subscriptions at scale: one server in production mode (SQLite file, the
# real Redis at $REDIS_URL, default redis://127.0.0.1:6379/0), SOCKETS
# sockets (default 10000) of one user each subscribed to
# postCreated { id title }, then bench/subs measures RSS growth per socket,
# idle CPU over 10 s, the fan-out p50/p99 of 3 events 2 s apart and the
# createPost answer time. Raises the open-file limit of both processes.
#
# Usage: SOCKETS=1000 bash bench/subs.sh   (SERVER_ENV='GODEBUG=gctrace=1' KEEP_LOG=file
# pass settings to the server and keep its log)
set -euo pipefail
cd "$(dirname "$0")/.."
SOCKETS=${SOCKETS:-10000}
PORT=${PORT:-18280}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
go build -o "$WORK/server" ./server
go build -o "$WORK/subs" ./bench/subs
env -i PATH="$PATH" HOME="$WORK" APP_ENV=production APP_ADDR=127.0.0.1:$PORT APP_REQUIRE_HTTPS=false \
  APP_JWT_SECRET=YmVuY2gtb25seS1zZWNyZXQtbmV2ZXItdXNlLWl0LWVsc2V3aGVyZQ== APP_ENCRYPTION_KEY=YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS1uZXZlci11c2UtaXQ= APP_SMTP_URL=smtp://127.0.0.1:9?tls=none APP_PUBLIC_URL=http://127.0.0.1 APP_REQUIRE_VERIFIED_EMAIL=false \
  DATABASE_URL="sqlite:$WORK/app.db" REDIS_URL="$REDIS_URL" APP_REDIS_PREFIX="bench:subs:$RANDOM$RANDOM:" \
  APP_RATE_API=1000000000/1m APP_RATE_REGISTER_IP=1000000/1m APP_METRICS_ADDR=127.0.0.1:0 \
  APP_WS_MAX_CONNECTIONS_PER_USER=0 APP_WS_MAX_UNAUTHENTICATED_PER_IP=100000 APP_LOG_LEVEL=warn \
  ${SERVER_ENV:-} "$WORK/server" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
echo "$(date -u +%FT%TZ) $(nproc) cores, $(go version | cut -d' ' -f3), SOCKETS=$SOCKETS"
"$WORK/subs" -url "http://127.0.0.1:$PORT" -pid "$PID" -sockets "$SOCKETS"
grep -c . "$WORK/server.log" | xargs echo "server log lines:"
[ -z "${KEEP_LOG:-}" ] || cp "$WORK/server.log" "$KEEP_LOG"
