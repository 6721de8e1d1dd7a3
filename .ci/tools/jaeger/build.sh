#!/usr/bin/env bash
# Builds Jaeger (github.com/jaegertracing/jaeger cmd/jaeger, the version
# pinned in this directory's go.mod) once, into a cache, and prints the
# binary's path. The tracing test reads it from JAEGER_BIN:
#
#   export JAEGER_BIN=$(.ci/tools/jaeger/build.sh)
#   go test -run TestTracingToJaeger ./server
#
# Its own module keeps Jaeger's dependencies (the OpenTelemetry Collector,
# storage clients) out of the server's go.mod. The first build takes minutes
# (measured: 50 min wall, 9 min CPU on a shared 2-core machine); later calls
# print the cached binary at once.
set -euo pipefail
cd "$(dirname "$0")"
version=$(go list -m -f '{{.Version}}' github.com/jaegertracing/jaeger)
cache=${JAEGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authql}
bin="$cache/jaeger-$version"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  echo "building jaeger $version into $bin (first time: minutes)" >&2
  go build -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
