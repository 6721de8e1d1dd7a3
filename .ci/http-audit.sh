#!/usr/bin/env bash
# The GraphQL-over-HTTP audit: graphql-http's auditServer (npm, pinned in
# .ci/http-audit/package-lock.json) against a live server built from this
# tree, on embedded defaults (development: introspection on, which the
# audit's __type queries need), on a free loopback port. Every MUST and
# every SHOULD must pass (.ci/http-audit/audit.mjs prints each audit).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "http audit: npm ci (.ci/http-audit)"
(cd .ci/http-audit && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)

step "http audit: go build ./server, started on embedded defaults at 127.0.0.1:0"
go build -o "$work/server" ./server
(
  cd "$work"
  exec env -u REDIS_URL -u DATABASE_URL -u APP_REDIS_CLUSTER_ADDRS -u APP_REDIS_SENTINEL_ADDRS -u APP_ENV \
    APP_ADDR=127.0.0.1:0 ./server >"$work/log" 2>&1
) &
pid=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's/.*msg=listening addr=\([0-9.:]*\).*/\1/p' "$work/log" | head -n1)
  if [ -n "$addr" ] && curl -fsS "http://$addr/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/log" >&2; echo "the server exited" >&2; exit 1; fi
  sleep 0.1
done
if [ -z "$addr" ] || ! curl -fsS "http://$addr/readyz" >/dev/null 2>&1; then
  cat "$work/log" >&2; echo "the server did not become ready" >&2; exit 1
fi

step "http audit: node audit.mjs http://$addr/query"
node .ci/http-audit/audit.mjs "http://$addr/query"
