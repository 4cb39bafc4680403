#!/usr/bin/env bash
# The README's test command (`npm test`): sets up what the tests need on a fresh machine,
# runs each vitest project in turn with the JSON reporter, and ends with one line
# `N passed, N failed` summed over those reports. Exit status is non-zero on any failure.
#
# Set-up, each step skipped when already done: npm dependencies, the TypeScript build
# (e2e tests run the compiled gateway), the local Cassandra node that the integration
# and e2e tests talk to (left running for the next run; `npm run cassandra:stop` ends it),
# and the local NATS server the cluster tests connect the gateway nodes through (left
# running too; `npm run nats:stop` ends it).
#
# Each phase starts with a line `==> [i/n] what`, so a newcomer sees where the first minutes
# go (the first run assembles Cassandra and installs Chromium). Arguments are passed to one
# vitest run instead of the per-project runs, e.g. `npm test -- --project unit`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mkdir -p test-results
summary=test-results/summary.txt
rm -f "$summary" test-results/vitest*.json

if [[ $# -gt 0 ]]; then runs=("vitest $*"); else runs=(unit integration e2e browser); fi
total=$((4 + ${#runs[@]}))
step=0
phase() {
  step=$((step + 1))
  echo "==> [$step/$total] $1"
}

fail_setup() {
  echo "set-up failed: $1" >&2
  echo "0 passed, 1 failed" | tee "$summary"
  exit 1
}

# `npm ci`, as CI systems and deploy scripts run it: the lock file must be complete for every
# platform. --engine-strict turns a dependency that does not run on this Node into an error,
# so the `engines` range in package.json stays true for the whole tree.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  phase "npm ci (dependencies)"
  npm ci --engine-strict --no-audit --no-fund --loglevel=warn || fail_setup "npm ci"
else
  phase "npm ci (dependencies): up to date, skipped"
fi
phase "build (tsc)"
npm run --silent build || fail_setup "tsc build"
phase "Cassandra node (the first run assembles it from Maven Central, about a minute)"
bash infra/cassandra/start.sh || fail_setup "Cassandra node"
phase "NATS server (cluster tests)"
bash infra/nats/start.sh || fail_setup "NATS server"

# One vitest run per project, so each phase is announced as it starts; every run reports to
# a file of its own and the summary adds them up. A failing project does not stop the rest.
reports=()
failures=0
for run in "${runs[@]}"; do
  if [[ $# -gt 0 ]]; then
    phase "$run"
    report=test-results/vitest.json
    args=("$@")
  else
    case $run in
      unit) phase "unit tests (engine and logic, nothing running)" ;;
      integration) phase "integration tests (the store on real Cassandra nodes)" ;;
      e2e) phase "e2e tests (the compiled gateway over real sockets)" ;;
      browser) phase "browser tests (Chromium; the first run installs it)" ;;
    esac
    report=test-results/vitest-$run.json
    args=(--project "$run")
  fi
  reports+=("$report")
  npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" "${args[@]}" || failures=$((failures + 1))
done

node infra/test-summary.mjs "${reports[@]}" | tee "$summary"
summary_status=${PIPESTATUS[0]}
if [[ $failures -ne 0 || $summary_status -ne 0 ]]; then exit 1; fi
