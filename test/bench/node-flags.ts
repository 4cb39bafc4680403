// Node flags for the servers the benchmarks start, as `npm start` and `npm run cluster` run
// the gateway: read from infra/gateway-node-flags.sh, the one list, which says why each.

import { readFileSync } from 'node:fs';

const FLAGS_FILE = new URL('../../../infra/gateway-node-flags.sh', import.meta.url);

function readGatewayNodeFlags(): string[] {
  const line = /^GATEWAY_NODE_FLAGS=\(([^)]*)\)$/m.exec(readFileSync(FLAGS_FILE, 'utf8'));
  const flags = line?.[1].trim().split(/\s+/) ?? [];
  if (flags.length === 0 || !flags.every((flag) => /^--[a-z0-9-]+(=[^\s'"]+)?$/.test(flag))) {
    throw new Error(`${FLAGS_FILE.pathname}: expected one line GATEWAY_NODE_FLAGS=(--flag ...) of plain flags`);
  }
  return flags;
}

export const SERVER_NODE_FLAGS = readGatewayNodeFlags();
