#!/usr/bin/env bash
# A real 3-master Redis Cluster on loopback, for tests and the topology
# script: 127.0.0.1:7001..7003, no replicas, no persistence.
#
#   .ci/redis-cluster.sh start   start it (a no-op when it is already up)
#   .ci/redis-cluster.sh stop    kill the nodes and remove their directories
#   .ci/redis-cluster.sh addrs   print the seed nodes, comma-separated
set -euo pipefail

PORTS=(7001 7002 7003)
BASE=/tmp/authql-cluster
HOST=127.0.0.1

cli() { redis-cli -h "$HOST" -p "$1" "${@:2}"; }

addrs() {
  local out=() p
  for p in "${PORTS[@]}"; do out+=("$HOST:$p"); done
  (IFS=,; echo "${out[*]}")
}

cluster_ok() {
  local p
  for p in "${PORTS[@]}"; do
    cli "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

wait_ok() {
  for _ in $(seq 100); do cluster_ok && return 0; sleep 0.1; done
  echo "redis cluster: cluster_state is not ok on every node" >&2
  for p in "${PORTS[@]}"; do echo "--- $p"; cli "$p" cluster info 2>&1 | head -3 >&2 || true; done
  return 1
}

start() {
  if cluster_ok; then
    echo "redis cluster: already up at $(addrs)"
    return 0
  fi
  local p
  for p in "${PORTS[@]}"; do
    if cli "$p" ping >/dev/null 2>&1; then
      # A node from an earlier run that never formed a cluster (or a
      # half-started one): start over rather than guess its state.
      echo "redis cluster: node $p is up but the cluster is not ok; restarting it" >&2
      stop
      break
    fi
  done
  for p in "${PORTS[@]}"; do
    mkdir -p "$BASE/$p"
    redis-server --port "$p" --bind "$HOST" --daemonize yes \
      --dir "$BASE/$p" --pidfile "$BASE/$p/redis.pid" --logfile "$BASE/$p/redis.log" \
      --cluster-enabled yes --cluster-config-file "$BASE/$p/nodes.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 50); do cli "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    cli "$p" ping >/dev/null || { echo "redis cluster: node $p did not start (see $BASE/$p/redis.log)" >&2; exit 1; }
  done
  local nodes=() 
  for p in "${PORTS[@]}"; do nodes+=("$HOST:$p"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$BASE/create.log" 2>&1 ||
    { cat "$BASE/create.log" >&2; exit 1; }
  wait_ok
  echo "redis cluster: up at $(addrs)"
}

stop() {
  local p pid
  for p in "${PORTS[@]}"; do
    pid=$(cat "$BASE/$p/redis.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    elif cli "$p" ping >/dev/null 2>&1; then
      # Up without our pid file: ask it to go (only ever on our own ports).
      cli "$p" shutdown nosave >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$BASE"
}

case "${1:-}" in
  start) start ;;
  stop) stop; echo "redis cluster: stopped" ;;
  addrs) addrs ;;
  *) echo "usage: $0 start|stop|addrs" >&2; exit 2 ;;
esac
