// Test helpers around real Cassandra nodes: starting and stopping them with the infra
// scripts, and giving each test file a keyspace of its own.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import cassandra from 'cassandra-driver';

const run = promisify(execFile);
const INFRA = fileURLToPath(new URL('../../infra/cassandra/', import.meta.url));

/** A local node as the infra scripts know it. */
export interface NodeSpec {
  name: string;
  address: string;
  nativePort: number;
  jmxPort: number;
  storagePort?: number;
}

/** The dev node the scripts start by default, or the one CASSANDRA_CONTACT_POINTS names. */
export const DEV_CONTACT_POINTS = (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',');

export function contactPointOf(node: NodeSpec): string {
  return `${node.address}:${node.nativePort}`;
}

function scriptEnv(node: NodeSpec): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CASSANDRA_NODE: node.name,
    CASSANDRA_ADDRESS: node.address,
    CASSANDRA_NATIVE_PORT: String(node.nativePort),
    CASSANDRA_JMX_PORT: String(node.jmxPort),
    CASSANDRA_STORAGE_PORT: String(node.storagePort ?? 7000),
  };
}

/** Starts the node (a no-op when it is up) and resolves once it answers CQL. */
export async function startNode(node: NodeSpec): Promise<void> {
  await run(`${INFRA}start.sh`, [], { env: scriptEnv(node), timeout: 300_000 });
}

/** Stops the node's Cassandra process (SIGTERM, then SIGKILL after a timeout). */
export async function stopNode(node: NodeSpec): Promise<void> {
  await run(`${INFRA}stop.sh`, [], { env: scriptEnv(node), timeout: 120_000 });
}

/** A keyspace name no other test run uses. */
export function uniqueKeyspace(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function dropKeyspace(contactPoints: string[], keyspace: string): Promise<void> {
  const client = new cassandra.Client({ contactPoints, localDataCenter: 'datacenter1' });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } finally {
    await client.shutdown();
  }
}

/** Resolves once `check` returns true; rejects with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
