#!/usr/bin/env bash
# .ci/redis-sentinel.sh start|stop|addrs: one Redis Sentinel on
# 127.0.0.1:26379 monitoring the Redis at 127.0.0.1:6379 as master "authql",
# so the suite can run through go-redis's Sentinel (failover) client. The
# Sentinel only watches; it changes nothing on the master (a single master
# with no replicas never fails over).
set -euo pipefail
PORT=26379
DIR=/tmp/authql-sentinel
cmd=${1:-}
case "$cmd" in
start)
  if redis-cli -p $PORT ping >/dev/null 2>&1; then exit 0; fi
  mkdir -p "$DIR"
  cat >"$DIR/sentinel.conf" <<EOF
port $PORT
bind 127.0.0.1
daemonize yes
pidfile $DIR/sentinel.pid
logfile $DIR/sentinel.log
dir $DIR
sentinel monitor authql 127.0.0.1 6379 1
sentinel down-after-milliseconds authql 5000
EOF
  redis-server "$DIR/sentinel.conf" --sentinel
  for _ in $(seq 50); do
    if [ "$(redis-cli -p $PORT sentinel get-master-addr-by-name authql 2>/dev/null | head -1)" = 127.0.0.1 ]; then exit 0; fi
    sleep 0.1
  done
  echo "Sentinel did not come up" >&2; cat "$DIR/sentinel.log" >&2; exit 1
  ;;
stop)
  [ -f "$DIR/sentinel.pid" ] && kill "$(cat "$DIR/sentinel.pid")" 2>/dev/null || true
  rm -rf "$DIR"
  ;;
addrs) echo "127.0.0.1:$PORT" ;;
*) echo "usage: $0 start|stop|addrs" >&2; exit 2 ;;
esac
