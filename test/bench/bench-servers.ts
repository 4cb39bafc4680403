// The servers the network benchmarks run against, each a process of its own started the
// way `npm start` runs the gateway (one GC thread): the compiled gateway on the local
// Cassandra node with a keyspace of its own, and the bare uWS peers (echo, pub/sub).

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import cassandra from 'cassandra-driver';
import { freePort } from '../support/free-port.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';

/** dist/ (the benchmarks run compiled, from dist/test/bench/). */
const DIST = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_JWT_SECRET = 'bench-jwt-secret-with-enough-length';
export const BENCH_ADMIN_TOKEN = 'bench-admin-token-with-enough-length';
const CONTACT_POINTS = process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042';

export interface BenchServer {
  port: number;
  child: ChildProcess;
}

async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${url}`);
}

/** Starts a bare uWS server script of test/bench/ that prints "listening <port>" once bound. */
export async function startUwsPeer(script: string, args: string[] = []): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, `${DIST}test/bench/${script}`, String(port), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().startsWith('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { port, child };
}

/**
 * Starts the compiled gateway on `keyspace` (rate limit off: the benchmarks measure the data
 * path), `env` on top. BENCH_GATEWAY_NODE_FLAGS adds Node flags to the gateway alone, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under a benchmark's load.
 */
export async function startBenchGateway(keyspace: string, env: Record<string, string> = {}): Promise<BenchServer> {
  const port = await freePort();
  const extraFlags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...extraFlags, `${DIST}src/main.js`], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CASSANDRA_CONTACT_POINTS: CONTACT_POINTS,
      CASSANDRA_KEYSPACE: keyspace,
      GATEWAY_JWT_SECRET: BENCH_JWT_SECRET,
      GATEWAY_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
      GATEWAY_RATE_LIMIT: '1000000000',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, child);
  return { port, child };
}

export function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function dropBenchKeyspace(keyspace: string): Promise<void> {
  const client = new cassandra.Client({ contactPoints: CONTACT_POINTS.split(','), localDataCenter: 'datacenter1' });
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).finally(() => client.shutdown());
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces, so split after its closing paren).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
