#!/usr/bin/env bash
# The playground page (server/playground), end to end:
#
#   1. the committed bundle is what the sources and the lock file build:
#      npm ci && npm run build, then dist/ must be unchanged; npm test runs
#      the unit tests of the token helpers (node --test)
#   2. the page in headless Chromium, against a real test server and under
#      the page's CSP: go test -tags browser -run TestPlaygroundBrowser
#      (Chromium is installed with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

ensure_chromium() {
  if [ ! -x "$CHROMIUM" ]; then
    step "installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x "$CHROMIUM" ]; then echo "no Chromium at $CHROMIUM" >&2; exit 1; fi
}

step "playground bundle is current: npm ci && npm run build && npm test (server/playground)"
(
  cd server/playground
  # loglevel=error hides npm's note that esbuild's install script did not
  # run: it only checks the binary that comes in @esbuild/<platform>.
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  npm run --silent build >/dev/null
  npm test --silent
)
git diff --exit-code --stat -- server/playground/dist
untracked=$(git status --porcelain --untracked-files=all -- server/playground/dist)
if [ -n "$untracked" ]; then echo "npm run build changed the committed bundle:"; echo "$untracked"; exit 1; fi

ensure_chromium
step "the playground in $("$CHROMIUM" --version 2>/dev/null): go test -tags browser -run TestPlaygroundBrowser ./server"
go vet -tags browser ./server
CHROMIUM=$CHROMIUM go test -tags browser -race -count=1 -run '^TestPlaygroundBrowser$' -v ./server
