// Test helpers around real Cassandra nodes: starting and stopping them with the infra
// scripts, and giving each test file a keyspace of its own.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
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

// The local 3-node ring of infra/cassandra/ring.sh: ring1..ring3 on 127.0.0.1..3.

/** The ring's nodes as ring.sh starts them (native port 9242, storage 7100, JMX 7201..7203). */
export const RING_NODES: readonly NodeSpec[] = [1, 2, 3].map((i) => ({
  name: `ring${i}`,
  address: `127.0.0.${i}`,
  nativePort: 9242,
  jmxPort: 7200 + i,
  storagePort: 7100,
}));

export const RING_CONTACT_POINTS = RING_NODES.map(contactPointOf);

async function ring(command: 'start' | 'stop' | 'status', timeout: number): Promise<string> {
  const { stdout } = await run(`${INFRA}ring.sh`, [command], { timeout });
  return stdout;
}

/**
 * Starts every ring node that is not up, one at a time, and resolves once each sees the other
 * two up (a write at ALL through each succeeds); with the ring up already, a check only.
 */
export function startRing(): Promise<string> {
  return ring('start', 600_000);
}

/** Stops all three ring nodes (SIGTERM, drain); their data stays. */
export function stopRing(): Promise<string> {
  return ring('stop', 180_000);
}

/** True when all three ring nodes run, answer CQL, and see each other up. */
export async function ringIsWhole(): Promise<boolean> {
  try {
    await ring('status', 60_000);
    return true;
  } catch {
    return false;
  }
}

/**
 * Drops a keyspace of the ring. (dropKeyspace would not do: its driver seeks the peers it
 * discovers on port 9042, where 127.0.0.1 is the dev node.)
 */
export async function dropRingKeyspace(keyspace: string): Promise<void> {
  const client = new cassandra.Client({ contactPoints: RING_CONTACT_POINTS, protocolOptions: { port: RING_NODES[0].nativePort }, localDataCenter: 'datacenter1' });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } finally {
    await client.shutdown();
  }
}

/** The pid of a ring node's JVM (from its pid file, checked against its command line), or undefined. */
export async function ringNodePid(node: NodeSpec): Promise<number | undefined> {
  const dir = fileURLToPath(new URL(`../../.local/cassandra/${node.name}/`, import.meta.url));
  try {
    const pid = Number((await readFile(`${dir}cassandra.pid`, 'utf8')).trim());
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
    return cmdline.includes('CassandraDaemon') && cmdline.includes(`/cassandra/${node.name}/conf`) ? pid : undefined;
  } catch {
    return undefined;
  }
}
