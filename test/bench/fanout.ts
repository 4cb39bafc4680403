// Fan-out latency: message -> every member's update, the gateway against raw uWS pub/sub.
//
//   npm run bench:fanout -- --users 2000 --members 10 --rates 500,1000,2000,5000,10000 --seconds 30 --json
//
// N users, each in exactly one channel of M members, each connected once (JSON). At every
// rate R of the ladder, R MESSAGE_CREATE/s are sent from random members for S seconds
// (after a warm-up), and every member's READ_STATE_UPDATE for each message is timed from
// the moment its author's frame was handed to the socket. The same load, from the same
// client code, hits:
// - gateway: the compiled gateway on the local Cassandra node (own keyspace, dropped after;
//   rate limit off and heartbeats far apart, since neither is what this measures);
// - uws-pubsub: each socket subscribed to its channel's topic, a message published to it
//   (test/bench/uws-pubsub-server.ts), the floor for the same deliveries;
// - gateway-no-write-behind (with --control): the same gateway with the flush delay beyond
//   the run, so no changed state is written during it: the gap between it and `gateway` in
//   the same run is the write-behind's, the rest is the host's and the per-message work's.
// The load runs in --processes child processes (channels split between them, so a message's
// send and receipts are timed on one clock), each reporting its own CPU and event-loop delay:
// a load process near a full core, or with event-loop delays near the figures, measures
// itself rather than the server. Server CPU comes from /proc.
//
// One JSON line per (impl, rate), then one summary line: p99 ratio per rate and the highest
// rate at which each side keeps p99 under 5 ms. --chart writes the p99-against-rate chart
// and the results to test/bench/results/fanout.{svg,json}.
//
// The Cassandra node shares the two cores. `--nice=-10` (as root) runs the servers and the
// load ahead of it and of anything else on the machine, as if the database had machines of
// its own (session-priority.ts); both sides get it.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BENCH_ADMIN_TOKEN, BENCH_JWT_SECRET, type BenchServer, dropBenchKeyspace, processCpuSeconds, startBenchGateway, startUwsPeer, stopServer } from './bench-servers.js';
import { renderFanoutChart } from './fanout-chart.js';
import { channelIdOf, type LoadConfig, type LoadRunResult, userIdOf } from './fanout-layout.js';
import { setSessionNice } from './session-priority.js';

const IMPLS = ['gateway', 'gateway-no-write-behind', 'uws-pubsub'] as const;
type Impl = (typeof IMPLS)[number];
/** The control's flush delay: an hour, longer than any ladder. */
const CONTROL_FLUSH_DELAY_MS = 3_600_000;
/** Each gateway on a keyspace of its own: the control must not find the first one's memberships. */
const keyspaceOf = (base: string, impl: Impl) => `${base}_${IMPLS.indexOf(impl)}`;
const isGateway = (impl: Impl) => impl !== 'uws-pubsub';
const P99_TARGET_US = 5000;

const argv = process.argv.slice(2);
/** `--name value` or `--name=value` (the form a negative value such as --nice=-10 needs). */
const option = (name: string, fallback: string) => {
  const inline = argv.find((arg) => arg.startsWith(`--${name}=`));
  if (inline !== undefined) return inline.slice(name.length + 3);
  const at = argv.indexOf(`--${name}`);
  return at === -1 ? fallback : argv[at + 1];
};
const USERS = Number(option('users', '2000'));
const MEMBERS = Number(option('members', '10'));
const RATES = option('rates', option('rate', '500,1000,2000,5000,10000')).split(',').map(Number);
const SECONDS = Number(option('seconds', '30'));
const WARMUP = Number(option('warmup', '3'));
const PROCESSES = Number(option('processes', '2'));
const IMPL_LIST = option('impls', argv.includes('--control') ? IMPLS.join(',') : 'gateway,uws-pubsub').split(',') as Impl[];
const NICE = Number(option('nice', '0'));
const JSON_OUTPUT = argv.includes('--json');
const CHART = argv.includes('--chart');

export interface FanoutResult {
  impl: Impl;
  rate: number;
  users: number;
  members: number;
  seconds: number;
  sent: number;
  expected: number;
  received: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxUs: number;
  /** p99 of the messages sent in each measured second. */
  perSecondP99us: number[];
  /** CPU of the server over the measured seconds, in cores (1 = one core busy). */
  serverCpu: number;
  /** CPU of all load processes, in cores. */
  loadCpu: number;
  loadLoopDelayMaxMs: number;
  loadUtilization: number;
}

const round = (n: number) => Math.round(n);

function percentile(sorted: Float32Array, p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** A load process and the lines it prints. */
class LoadProcess {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.waiting !== undefined) {
        const deliver = this.waiting;
        this.waiting = undefined;
        deliver(line);
      } else this.lines.push(line);
    });
  }

  nextLine(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.child.once('exit', (code) => reject(new Error(`load process exited with ${code}`)));
    });
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }
}

async function joinMembers(server: BenchServer, channels: number): Promise<void> {
  const calls: Array<[number, number]> = [];
  for (let c = 0; c < channels; c++) for (let m = 0; m < MEMBERS; m++) calls.push([c, m]);
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const [c, m] = calls[next++];
      const response = await fetch(`http://127.0.0.1:${server.port}/v1/channels/${channelIdOf(c)}/members/${userIdOf(c, m, MEMBERS)}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
      });
      if (response.status !== 204) throw new Error(`join failed: ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function runImpl(impl: Impl, keyspace: string, samplesDir: string): Promise<FanoutResult[]> {
  const channels = Math.floor(USERS / MEMBERS);
  const gatewayEnv: Record<string, string> = { GATEWAY_HEARTBEAT_INTERVAL_MS: String(3_600_000) };
  if (impl === 'gateway-no-write-behind') gatewayEnv.READSTATE_FLUSH_DELAY_MS = String(CONTROL_FLUSH_DELAY_MS);
  const server = isGateway(impl) ? await startBenchGateway(keyspaceOf(keyspace, impl), gatewayEnv) : await startUwsPeer('uws-pubsub-server.js');
  const loads: LoadProcess[] = [];
  try {
    if (isGateway(impl)) await joinMembers(server, channels);
    const script = fileURLToPath(new URL('./fanout-load.js', import.meta.url));
    for (let p = 0; p < PROCESSES; p++) {
      const first = Math.floor((channels * p) / PROCESSES);
      const config: LoadConfig = {
        impl: isGateway(impl) ? 'gateway' : 'uws-pubsub',
        url: `ws://127.0.0.1:${server.port}/gateway`,
        firstChannel: first,
        channels: Math.floor((channels * (p + 1)) / PROCESSES) - first,
        members: MEMBERS,
        jwtSecret: BENCH_JWT_SECRET,
      };
      loads.push(new LoadProcess(spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] })));
    }
    for (const load of loads) if ((await load.nextLine()) !== 'connected') throw new Error('a load process did not connect');
    process.stderr.write(`${impl}: ${channels * MEMBERS} users connected in ${PROCESSES} load processes\n`);

    const results: FanoutResult[] = [];
    for (const rate of RATES) {
      const startAt = Date.now() + 500;
      const paths = loads.map((_, i) => join(samplesDir, `${impl}-${rate}-${i}.bin`));
      loads.forEach((load, i) => load.send(`run ${rate / PROCESSES} ${WARMUP} ${SECONDS} ${startAt} ${paths[i]}`));
      // Server CPU over the measured seconds only.
      await new Promise((resolve) => setTimeout(resolve, startAt + WARMUP * 1000 - Date.now()));
      const cpuStart = processCpuSeconds(server.child.pid!);
      await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
      const serverCpu = (processCpuSeconds(server.child.pid!) - cpuStart) / SECONDS;
      const runs = (await Promise.all(loads.map((load) => load.nextLine()))).map((line) => JSON.parse(line) as LoadRunResult);
      results.push(summarize(impl, rate, runs, paths, serverCpu));
      const result = results.at(-1)!;
      process.stdout.write(
        JSON_OUTPUT
          ? `${JSON.stringify(result)}\n`
          : `${impl} ${rate}/s: p50 ${result.p50us} µs, p99 ${result.p99us} µs, p99.9 ${result.p999us} µs, ${result.received}/${result.expected} updates, server ${result.serverCpu} cores, load ${result.loadCpu} cores\n`,
      );
    }
    for (const load of loads) load.send('exit');
    return results;
  } finally {
    for (const load of loads) load.child.kill();
    await stopServer(server.child);
  }
}

function summarize(impl: Impl, rate: number, runs: LoadRunResult[], paths: string[], serverCpu: number): FanoutResult {
  const total = runs.reduce((sum, r) => sum + r.samples, 0);
  const latencies = new Float32Array(total);
  const perSecond: number[][] = Array.from({ length: SECONDS + 1 }, () => []);
  let at = 0;
  runs.forEach((run, i) => {
    const bytes = readFileSync(paths[i]);
    const own = new Float32Array(bytes.buffer, bytes.byteOffset, run.samples);
    const seconds = new Uint16Array(bytes.buffer.slice(bytes.byteOffset + run.samples * 4, bytes.byteOffset + run.samples * 6));
    latencies.set(own, at);
    at += run.samples;
    for (let k = 0; k < run.samples; k++) perSecond[Math.min(SECONDS, seconds[k])].push(own[k]);
  });
  latencies.sort();
  return {
    impl,
    rate,
    users: Math.floor(USERS / MEMBERS) * MEMBERS,
    members: MEMBERS,
    seconds: SECONDS,
    sent: runs.reduce((sum, r) => sum + r.sent, 0),
    expected: runs.reduce((sum, r) => sum + r.expected, 0),
    received: total,
    p50us: round(percentile(latencies, 0.5)),
    p99us: round(percentile(latencies, 0.99)),
    p999us: round(percentile(latencies, 0.999)),
    maxUs: round(latencies[latencies.length - 1] ?? 0),
    perSecondP99us: perSecond.slice(0, SECONDS).map((second) => round(percentile(Float32Array.from(second).sort(), 0.99))),
    serverCpu: Number(serverCpu.toFixed(2)),
    loadCpu: Number((runs.reduce((sum, r) => sum + r.cpuSeconds, 0) / SECONDS).toFixed(2)),
    loadLoopDelayMaxMs: Number(Math.max(...runs.map((r) => r.loopDelayMaxMs)).toFixed(1)),
    loadUtilization: Number(Math.max(...runs.map((r) => r.utilization)).toFixed(2)),
  };
}

async function main(): Promise<void> {
  const valid =
    [USERS, MEMBERS, SECONDS, PROCESSES, ...RATES].every((n) => Number.isSafeInteger(n) && n > 0) &&
    USERS >= MEMBERS * PROCESSES &&
    Number.isSafeInteger(NICE) &&
    IMPL_LIST.every((impl) => IMPLS.includes(impl));
  if (!valid) {
    throw new Error(
      'usage: fanout --users N --members M --rates R1,R2,… --seconds S [--processes P] [--impls gateway,uws-pubsub] [--control] [--nice=N] [--json] [--chart]',
    );
  }
  if (NICE !== 0) setSessionNice(NICE, 'fanout');
  const keyspace = `bench_fanout_${Date.now().toString(36)}`;
  const samplesDir = mkdtempSync(join(tmpdir(), 'fanout-'));
  const results: FanoutResult[] = [];
  try {
    for (const impl of IMPL_LIST) results.push(...(await runImpl(impl, keyspace, samplesDir)));
  } finally {
    rmSync(samplesDir, { recursive: true, force: true });
    for (const impl of IMPL_LIST.filter(isGateway)) await dropBenchKeyspace(keyspaceOf(keyspace, impl));
  }
  /** p99 of `impl` over the peer's, per rate. */
  const ratioToPeer = (impl: Impl) => {
    const ratios: Record<string, number> = {};
    for (const rate of RATES) {
      const side = results.find((r) => r.impl === impl && r.rate === rate);
      const peer = results.find((r) => r.impl === 'uws-pubsub' && r.rate === rate);
      if (side !== undefined && peer !== undefined) ratios[rate] = Number((side.p99us / peer.p99us).toFixed(2));
    }
    return ratios;
  };
  const p99Ratio = ratioToPeer('gateway');
  const highestUnder = (impl: Impl) => Math.max(0, ...results.filter((r) => r.impl === impl && r.p99us < P99_TARGET_US && r.received === r.expected).map((r) => r.rate));
  const summary = {
    nice: NICE,
    p99Ratio,
    ...(IMPL_LIST.includes('gateway-no-write-behind') ? { p99RatioWithoutWriteBehind: ratioToPeer('gateway-no-write-behind') } : {}),
    highestRateUnder5ms: Object.fromEntries(IMPL_LIST.map((impl) => [impl, highestUnder(impl)])),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (CHART) {
    const base = fileURLToPath(new URL('../../../test/bench/results/fanout', import.meta.url));
    writeFileSync(`${base}.json`, `${JSON.stringify({ argv, results, summary }, null, 1)}\n`);
    writeFileSync(`${base}.svg`, await renderFanoutChart(results, `${USERS} users in channels of ${MEMBERS}, ${SECONDS} s per rate, ${PROCESSES} load processes on the same 2 cores`));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
