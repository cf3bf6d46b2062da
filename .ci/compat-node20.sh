#!/usr/bin/env bash
# Version matrix, second row: the system's Node.js 20 with Connect 2.1 (which
# has no request gate), running the core suite and the interceptor-only
# protocol tests. The first row (pinned Node.js 24, latest Connect) is `npm test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
node20=${NODE20:-/usr/bin/node}
"$node20" --version | grep -q '^v20\.' || { echo "compat: $node20 is not Node.js 20" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$work")
cd "$work"
npm ci --no-audit --no-fund --loglevel=error
# Connect 2.1 in place of the tested latest, without touching the lockfile.
npm pkg delete overrides
npm install --no-save --no-audit --no-fund --loglevel=error \
  @connectrpc/connect@2.1 @connectrpc/connect-node@2.1 @connectrpc/connect-web@2.1
echo "compat: $("$node20" --version), @connectrpc/connect $(node -p 'require("./node_modules/@connectrpc/connect/package.json").version')"
"$node20" --import tsx --test --test-concurrency=1 test/core/*.test.ts
"$node20" --import tsx --test --test-name-pattern="^interceptor only" test/e2e/protocols.test.ts
