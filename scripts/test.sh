#!/usr/bin/env bash
# Runs every test of storagebot. It first installs, once, the npm packages
# that the tests run offline as Microsoft-written peers: the Adaptive Cards
# renderer, the Agents Playground and the Teams manifest schemas. With them
# in place, no test is skipped for want of Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."

node_dir=testdata/node
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
  [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  echo "Installing the npm test peers into $node_dir/node_modules..."
  npm ci --prefix "$node_dir" --no-audit --no-fund
fi

# Tests that need Node.js fail instead of skipping when it is missing.
export STORAGEBOT_REQUIRE_NODE=1

# The summary at the end ("DONE N tests ...") comes from gotestsum, which
# go.mod pins as a tool.
exec go tool gotestsum --format testname -- -race -count=1 -timeout 20m "$@" ./...
