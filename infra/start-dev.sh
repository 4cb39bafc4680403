#!/usr/bin/env bash
# `npm start`: the one command to run the gateway on a fresh checkout.
#   1. installs the npm dependencies when they are missing or older than package-lock.json;
#   2. starts the local Cassandra node (infra/cassandra/start.sh, idempotent, waits for CQL)
#      unless CASSANDRA_CONTACT_POINTS names a cluster to use instead;
#   3. builds, then runs dist/src/main.js in the foreground (Ctrl-C stops it cleanly).
# Without GATEWAY_JWT_SECRET / GATEWAY_ADMIN_TOKEN it uses development secrets and prints
# them; with NODE_ENV=production it refuses to start without real ones.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ ${NODE_ENV:-} == production && ( -z ${GATEWAY_JWT_SECRET:-} || -z ${GATEWAY_ADMIN_TOKEN:-} ) ]]; then
  echo "NODE_ENV=production: set GATEWAY_JWT_SECRET and GATEWAY_ADMIN_TOKEN (development secrets are refused)" >&2
  exit 2
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "installing npm dependencies ..."
  npm ci --engine-strict --no-audit --no-fund
fi

if [[ -z ${CASSANDRA_CONTACT_POINTS:-} ]]; then
  bash infra/cassandra/start.sh
else
  echo "using Cassandra at $CASSANDRA_CONTACT_POINTS"
fi

echo "building ..."
npm run build --silent

if [[ -z ${GATEWAY_JWT_SECRET:-} || -z ${GATEWAY_ADMIN_TOKEN:-} ]]; then
  cat <<BANNER

  Development secrets (refused when NODE_ENV=production):
    GATEWAY_JWT_SECRET=$(node --input-type=module -e "import { DEV_JWT_SECRET } from './dist/src/config.js'; process.stdout.write(process.env.GATEWAY_JWT_SECRET || DEV_JWT_SECRET)")
    GATEWAY_ADMIN_TOKEN=$(node --input-type=module -e "import { DEV_ADMIN_TOKEN } from './dist/src/config.js'; process.stdout.write(process.env.GATEWAY_ADMIN_TOKEN || DEV_ADMIN_TOKEN)")
  A user token:   npm run -s token -- <user_id>
  Gateway:        ws://${HOST:-127.0.0.1}:${PORT:-8080}/gateway?encoding=json

BANNER
fi

# Node flags, and why: infra/gateway-node-flags.sh.
source infra/gateway-node-flags.sh
exec node "${GATEWAY_NODE_FLAGS[@]}" dist/src/main.js
