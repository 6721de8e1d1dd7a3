#!/usr/bin/env bash
# Client codegen: the TypeScript example (examples/web) regenerates its types
# from graph/schema.graphql (kept current by `go generate ./...`, checked in
# .ci/run) and must type-check against them. The Go client (graph/client) is
# covered by the generated-code check and the e2e tests.
set -euo pipefail
cd "$(dirname "$0")/../examples/web"

printf '\n==> %s\n' "clients: npm ci && npm run check (examples/web)"
# loglevel=error hides EBADENGINE warnings: a few transitive packages of the
# codegen CLI's remote-schema loaders (@whatwg-node/*, sync-fetch) declare
# Node 22; we load the schema from a file, and codegen runs on Node 20.
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
npm run check
