#!/usr/bin/env bash
# The README's test command (`npm test`): sets up what the tests need on a fresh machine,
# runs every vitest project once with the JSON reporter, and ends with one line
# `N passed, N failed` derived from that report. Exit status is non-zero on any failure.
#
# Set-up, each step skipped when already done: npm dependencies, the TypeScript build
# (e2e tests run the compiled gateway), and the local Cassandra node that the integration
# and e2e tests talk to (left running for the next run; `npm run cassandra:stop` ends it).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mkdir -p test-results
summary=test-results/summary.txt
rm -f "$summary"

fail_setup() {
  echo "set-up failed: $1" >&2
  echo "0 passed, 1 failed" | tee "$summary"
  exit 1
}

# `npm ci`, as CI systems and deploy scripts run it: the lock file must be complete for every
# platform. --engine-strict turns a dependency that does not run on this Node into an error,
# so the `engines` range in package.json stays true for the whole tree.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --engine-strict --no-audit --no-fund --loglevel=warn || fail_setup "npm ci"
fi
npm run --silent build || fail_setup "tsc build"
bash infra/cassandra/start.sh || fail_setup "Cassandra node"

report=test-results/vitest.json
rm -f "$report"
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?

node infra/test-summary.mjs "$report" | tee "$summary"
summary_status=${PIPESTATUS[0]}
if [[ $status -ne 0 || $summary_status -ne 0 ]]; then exit 1; fi
