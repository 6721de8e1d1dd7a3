#!/usr/bin/env bash
# Client codegen: the TypeScript example (examples/web) regenerates its types
# from graph/schema.graphql (kept current by `go generate ./...`, checked in
# .ci/run) and must type-check against them, and its committed
# persisted-documents manifest (examples/web/persisted-documents.json, which
# the server's trusted-documents tests load) must be what codegen writes.
# The Go client (graph/client) and its manifest are covered by the
# generated-code check and the e2e tests.
set -euo pipefail
cd "$(dirname "$0")/../examples/web"

printf '\n==> %s\n' "clients: npm ci && npm run check (examples/web)"
# loglevel=error hides EBADENGINE warnings: a few transitive packages of the
# codegen CLI's remote-schema loaders (@whatwg-node/*, sync-fetch) declare
# Node 22; we load the schema from a file, and codegen runs on Node 20.
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
npm run check

printf '\n==> %s\n' "clients: examples/web/persisted-documents.json is current"
git diff --exit-code -- persisted-documents.json
if [ -n "$(git status --porcelain -- persisted-documents.json)" ]; then
  echo "npm run codegen wrote persisted-documents.json: commit it"; exit 1
fi
