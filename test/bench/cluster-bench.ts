// The cost of crossing nodes: the same client-sim load against a one-node cluster and a
// three-node cluster, in the same run, on the same machine.
//
//   npm run bench:cluster -- --users 600 --channels 60 --rate 200 --seconds 30 --json
//
// Each topology gets a keyspace of its own on the local Cassandra node and the NATS server
// infra/nats/start.sh runs; the nodes are the compiled gateway (rate limit off). The load
// is client-sim (a process of its own, the same seed and ids for both topologies), its
// sessions spread over the nodes and redirected to their users' nodes. Reported per
// topology: e2e message -> every member's update (p50/p99/p99.9), the share of updates whose
// member is on another node than the author (and their latencies beside the same-node
// ones), each node's CPU, and the cross-node traffic per message from the nodes' /metrics;
// then one line comparing three nodes with one. All three nodes share this machine's cores,
// so this measures the latency cost of the extra hops, not throughput scaling.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BENCH_ADMIN_TOKEN, BENCH_JWT_SECRET, type BenchServer, dropBenchKeyspace, processCpuSeconds, startBenchGateway, stopServer } from './bench-servers.js';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const NATS_URL = process.env.GATEWAY_NATS_URL ?? 'nats://127.0.0.1:4222';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = argv.indexOf(`--${name}`);
  return at === -1 ? fallback : argv[at + 1];
};
const USERS = option('users', '600');
const CHANNELS = option('channels', '60');
const RATE = option('rate', '200');
const SECONDS = option('seconds', '30');
const TOPOLOGIES = option('nodes', '1,3').split(',').map(Number);
const JSON_OUTPUT = argv.includes('--json');

interface LatencySummary {
  count: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxUs: number;
}

interface SimSummary {
  messagesSent: number;
  lost: number;
  redirects: number;
  errors: Record<string, number>;
  latency: { message: LatencySummary };
  crossNode: { share: number; latency: LatencySummary; sameNodeLatency: LatencySummary };
  simulatorLoopDelay: { p99us: number; maxUs: number };
}

export interface ClusterBenchResult {
  bench: 'cluster';
  nodes: number;
  users: number;
  channels: number;
  rate: number;
  seconds: number;
  messagesSent: number;
  updates: number;
  lost: number;
  redirects: number;
  errors: Record<string, number>;
  e2e: LatencySummary;
  crossNodeShare: number;
  crossNode: LatencySummary;
  sameNode: LatencySummary;
  /** Per node: CPU seconds over the whole run (set-up included), and share of one core during the load. */
  nodeCpuSeconds: number[];
  /** Bytes published to channel subjects per message sequenced, and node requests per message, over all nodes. */
  crossNodeBytesPerMessage: number;
  nodeRequestsPerMessage: number;
  simulatorLoopDelayP99us: number;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

async function waitForMembers(nodes: BenchServer[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const counts = await Promise.all(nodes.map(async (node) => ((await (await fetch(`http://127.0.0.1:${node.port}/v1/cluster`, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } })).json()) as { nodes: Array<{ ready: boolean }> }).nodes.filter((n) => n.ready).length));
    if (counts.every((count) => count === nodes.length)) return;
    if (Date.now() > deadline) throw new Error(`nodes do not agree on the membership: ${counts.join(',')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function runSim(urls: string[]): Promise<SimSummary> {
  const args = ['--url', urls.join(','), '--admin-token', BENCH_ADMIN_TOKEN, '--jwt-secret', BENCH_JWT_SECRET, '--users', USERS, '--channels', CHANNELS, '--rate', RATE, '--seconds', SECONDS, '--seed', '7', '--id-base', '1152921504606846976'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${DIST}client-sim/client-sim.js`, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`client-sim exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as SimSummary);
    });
  });
}

async function runTopology(count: number): Promise<ClusterBenchResult> {
  const keyspace = `bench_cluster_${count}_${Date.now().toString(36)}`;
  const nodes: BenchServer[] = [];
  try {
    for (let id = 1; id <= count; id++) nodes.push(await startBenchGateway(keyspace, { GATEWAY_NATS_URL: NATS_URL, GATEWAY_NODE_ID: String(id), GATEWAY_HEARTBEAT_INTERVAL_MS: '600000' }));
    await waitForMembers(nodes);
    const sim = await runSim(nodes.map((node) => `ws://127.0.0.1:${node.port}/gateway`));
    const sum = async (name: string) => (await Promise.all(nodes.map((node) => metric(node.port, name)))).reduce((a, b) => a + b, 0);
    const messages = await sum('cluster_messages_out_total');
    return {
      bench: 'cluster',
      nodes: count,
      users: Number(USERS),
      channels: Number(CHANNELS),
      rate: Number(RATE),
      seconds: Number(SECONDS),
      messagesSent: sim.messagesSent,
      updates: sim.latency.message.count,
      lost: sim.lost,
      redirects: sim.redirects,
      errors: sim.errors,
      e2e: sim.latency.message,
      crossNodeShare: sim.crossNode.share,
      crossNode: sim.crossNode.latency,
      sameNode: sim.crossNode.sameNodeLatency,
      nodeCpuSeconds: nodes.map((node) => processCpuSeconds(node.child.pid!)),
      crossNodeBytesPerMessage: messages === 0 ? 0 : Math.round((await sum('cluster_message_bytes_out_total')) / messages),
      nodeRequestsPerMessage: messages === 0 ? 0 : Number(((await sum('cluster_node_requests_sent_total')) / messages).toFixed(3)),
      simulatorLoopDelayP99us: sim.simulatorLoopDelay.p99us,
    };
  } finally {
    await Promise.all(nodes.map((node) => stopServer(node.child)));
    await dropBenchKeyspace(keyspace).catch(() => {});
  }
}

const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
const results: ClusterBenchResult[] = [];
for (const count of TOPOLOGIES) {
  const result = await runTopology(count);
  results.push(result);
  if (JSON_OUTPUT) process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stderr.write(
    `${count} node(s): ${result.messagesSent} messages, ${result.updates} updates (lost ${result.lost}), e2e p50 ${ms(result.e2e.p50us)} p99 ${ms(result.e2e.p99us)}; cross-node ${(result.crossNodeShare * 100).toFixed(1)}% (p99 ${ms(result.crossNode.p99us)}), same node p99 ${ms(result.sameNode.p99us)}; ${result.crossNodeBytesPerMessage} B/message published, ${result.nodeRequestsPerMessage} node requests/message; node CPU ${result.nodeCpuSeconds.map((s) => s.toFixed(1)).join('+')} s\n`,
  );
}
const one = results.find((r) => r.nodes === 1);
const three = results.find((r) => r.nodes === 3);
if (one !== undefined && three !== undefined) {
  const comparison = {
    bench: 'cluster-comparison',
    p50Ratio: Number((three.e2e.p50us / one.e2e.p50us).toFixed(2)),
    p99Ratio: Number((three.e2e.p99us / one.e2e.p99us).toFixed(2)),
    crossNodeShare: three.crossNodeShare,
    crossNodeBytesPerMessage: three.crossNodeBytesPerMessage,
  };
  if (JSON_OUTPUT) process.stdout.write(`${JSON.stringify(comparison)}\n`);
  process.stderr.write(`3 nodes against 1: e2e p50 ×${comparison.p50Ratio}, p99 ×${comparison.p99Ratio}\n`);
}
