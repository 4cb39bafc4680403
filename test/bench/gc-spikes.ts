// `npm run bench:gc-spikes -- --preload N --seconds S --json`
//
// Two gateway processes that differ only in the read-state table (the engine's typed-array
// slab, and an lru-cache table of objects: lru-cache-read-state-table.ts), each preloaded
// with N read states, run one after the other under the same client-sim load for S
// measured seconds. The simulator measures end-to-end latency (message sent -> each online
// member's update; ack sent -> update) and keeps a p99 and a max per second; each gateway
// reports its own GC pauses and event-loop delay every second.
//
// A third run, before those two, is the control: the engine gateway with an empty table
// (preload 0) under the same load. Whatever spike seconds it has come from the rest of the
// system (the machine, the simulator, the gateway's sessions), not from holding N read states;
// `--skip-control` leaves it out.
//
// Prints one JSON line per run:
//   {impl, preload, seconds, medianP99us, maxP99us, maxUs, spikeSeconds, rssMB, ...}
// spikeSeconds counts the seconds whose p99 exceeds 3 x the run's median per-second p99.
// hostStealPct is the VM's CPU steal over the measured seconds and spikeHostStealPct over the
// spike seconds alone (host-steal.ts): far above the first, the host made those seconds slow.
// Writes the series and the conditions to <out>/gc-spikes-<N>.json and the chart of the
// runs to <out>/gc-spikes-<N>.svg (default out: test/bench/results). `--chart-from FILE`
// redraws the chart of an earlier results file.
//
// `--working-set 3x` is the churn mode (churn-load.ts): the table is exactly full, its keys
// and twice as many more are written to Cassandra before the run, and `--churn-rate` acks a
// second over all of them keep it missing, loading, evicting and writing (`--seeded`: the
// keyspace holds that working set from an earlier run already); each run's line
// then has its missesPerSec, evictionsPerSec and storeWritesPerSec, and the gateway's heap at
// the start and end of the measured seconds. The idle control has nothing to churn, so churn
// mode adds a second control after it: the same engine gateway with a full table of only
// CHURN_CONTROL_STATES, churning over the same working set at the tables' miss rate (nearly
// every one of its acks misses). It issues the same loads and writes to the same Cassandra
// node on the same two cores; only the N resident states are missing. Spikes that it has as
// well come from the churn's I/O, not from holding the table. BENCH_GATEWAY_NODE_FLAGS adds Node flags to the
// gateways (e.g. "--no-memory-reducer"), recorded with the results.
//
// Needs the Cassandra node (npm run cassandra:start) and a build (the npm script builds).
// On a shared machine, `--nice=-10` (as root) runs the gateway and the simulator ahead of
// other jobs and the Cassandra node (it sets this session's autogroup nice, and each child's
// nice), and `--pin` gives each its own core; both tables get the same treatment.

import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type SecondSample, spikeSecondsOf, spikeStats } from '../../client-sim/latency.js';
import { freePort } from '../support/free-port.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';
import { type GatewaySecond, renderSpikeChart } from './gc-spikes-chart.js';
import { HostStealSampler } from './host-steal.js';
import { TABLE_IMPLS, type TableImpl } from './lru-cache-read-state-table.js';
import { setSessionNice } from './session-priority.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/test/bench -> repository root. */
const ROOT = resolve(HERE, '../../..');
const SPIKE_FACTOR = 3;
/** CPUs for --pin. */
const GATEWAY_CPU = 1;
const SIMULATOR_CPU = 0;
/** Read states the swarm itself adds, and room above them: neither run may evict. */
const CAPACITY_HEADROOM = 1_000_000;
/** The churn control's full table: big enough that the swarm's ~10,000 states stay resident, 0.75 % of 8M. */
const CHURN_CONTROL_STATES = 60_000;

/** The parts of client-sim's JSON summary used here. */
interface SimSummary {
  messagesSent: number;
  missedUpdates: number;
  errors: Record<string, number>;
  closes: Record<string, number>;
  latency: { all: { count: number; p50us: number; p99us: number; p999us: number; maxUs: number } };
  perSecond: SecondSample[];
  measureStartedAt: number;
  simulatorLoopDelay: { p99us: number; maxUs: number };
}

/** What the bench gateway prints every second (gc-spikes-gateway.ts). */
interface GatewayReport {
  at: number;
  loopDelayMaxMs: number;
  /** [started at (epoch ms), length (ms), kind (perf_hooks.constants.NODE_PERFORMANCE_GC_*)] */
  gcPauses: [number, number, number][];
  /** Running totals of the table: misses (each a load from the store), evictions, records written. */
  misses: number;
  evictions: number;
  writes: number;
  heapUsedMB: number;
}

interface RunResult {
  impl: TableImpl;
  preload: number;
  /** A table under test, the idle control (empty table, no churn) or the churn control (CHURN_CONTROL_STATES, same churn). */
  role: GatewayRole;
  seconds: number;
  medianP99us: number;
  maxP99us: number;
  maxUs: number;
  spikeSeconds: number;
  rssMB: number;
  p50us: number;
  p999us: number;
  /** Longest GC pause in the gateway during the measured seconds, and all its GC time. */
  gcMaxMs: number;
  gcTotalMs: number;
  gatewayLoopDelayMaxMs: number;
  heapUsedMBAfterPreload: number;
  preloadMs: number;
  messagesPerSecond: number;
  updatesPerSecond: number;
  missedUpdates: number;
  simulatorLoopDelayMaxUs: number;
  /** Mean CPU steal (% of all CPU time) over the measured seconds, and over the spike seconds alone (0 without any). */
  hostStealPct: number;
  spikeHostStealPct: number;
  /** Means over the measured seconds (churn mode; about 0 in the constant mode). */
  missesPerSec: number;
  evictionsPerSec: number;
  storeWritesPerSec: number;
  /** The gateway's heap at the first and the last measured second: flat under churn, or growing. */
  heapUsedMBStart: number;
  heapUsedMBEnd: number;
}

interface Run {
  result: RunResult;
  /** Epoch ms of the first measured second's start: lines the series up with other logs (the store node's GC log, /proc/stat). */
  measureStartedAt: number;
  series: SecondSample[];
  gateway: GatewaySecond[];
  /** CPU steal, % of all CPU time, per measured second. */
  hostStealPct: number[];
}

interface Conditions {
  date: string;
  node: string;
  cpus: number;
  memoryGiB: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  nice: number;
  preloadChannelSize: number;
  pinned: boolean;
  workingSet: string;
  churnRate: number;
  gatewayNodeFlags: string[];
  sim: { rate: number; users: number; channels: number; maxChannelSize: number; encoding: string; warmupSeconds: number; seed: number };
}

interface ResultsFile {
  conditions: Conditions;
  runs: Run[];
}

const { values: args } = parseArgs({
  options: {
    preload: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
    impls: { type: 'string', default: TABLE_IMPLS.join(',') },
    keyspace: { type: 'string', default: 'bench_gc' },
    out: { type: 'string', default: join(ROOT, 'test/bench/results') },
    // Longer than the gateway's default flush delay (30 s): the first write-behind flush, with
    // its cold code paths, falls in the warm-up like every other first time.
    'warmup-seconds': { type: 'string', default: '45' },
    rate: { type: 'string', default: '200' },
    users: { type: 'string', default: '2000' },
    channels: { type: 'string', default: '300' },
    'max-channel-size': { type: 'string', default: '60' },
    encoding: { type: 'string', default: 'json' },
    seed: { type: 'string', default: '7' },
    /** Members per preloaded channel: 8M states in channels of 1,000 are 8,000 channels. */
    'preload-channel-size': { type: 'string', default: '1000' },
    nice: { type: 'string', default: '0' },
    /** Pin the gateway to CPU 1 and the simulator to CPU 0 (taskset), so neither one's work, GC threads included, runs on the other's core. */
    pin: { type: 'boolean', default: false },
    'skip-control': { type: 'boolean', default: false },
    /** `1x`: the constant mode; `3x`: a full table and a working set of 3 x --preload keys (churn-load.ts). */
    'working-set': { type: 'string', default: '1x' },
    /** Churn mode: acks a second over the working set, from inside the gateway. */
    'churn-rate': { type: 'string', default: '3500' },
    /** Churn mode: the keyspace already holds this working set (an earlier run wrote it); do not write it again. */
    seeded: { type: 'boolean', default: false },
    'chart-from': { type: 'string' },
  },
  strict: true,
});

/**
 * Spawns node with `nodeArgs`: under `nice -n` when --nice is not 0, and on `cpu` alone with
 * --pin (nice and taskset exec their command: the pid stays node's).
 */
function spawnNode(nodeArgs: string[], cpu: number, options: SpawnOptions): ChildProcess {
  const command = [process.execPath, ...nodeArgs];
  if (Number(args.nice) !== 0) command.unshift('nice', '-n', args.nice);
  if (args.pin) command.unshift('taskset', '-c', String(cpu));
  return spawn(command[0], command.slice(1), options);
}

let seededThisRun = false;

/** --working-set as a number: `3x` -> 3. */
function workingSet(): number {
  const factor = Number(args['working-set'].replace(/x$/, ''));
  if (!(factor >= 1)) throw new Error(`--working-set must be 1x or more, got ${args['working-set']}`);
  return factor;
}

/** Node flags for the gateways from BENCH_GATEWAY_NODE_FLAGS, e.g. "--no-memory-reducer". */
function extraNodeFlags(): string[] {
  return (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
}

/** Resident set size of a process, from /proc (Linux), in MiB; 0 once it is gone. */
function rssOf(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Math.round(Number(match[1]) / 1024);
  } catch {
    return 0;
  }
}

interface BenchGateway {
  child: ChildProcess;
  port: number;
  ready: { preloadMs: number; heapUsedMB: number; rssMB: number };
  reports: GatewayReport[];
}

type GatewayRole = 'table' | 'control' | 'churn control';

interface GatewaySpec {
  impl: TableImpl;
  preload: number;
  role: GatewayRole;
}

async function startGateway({ impl, preload, role }: GatewaySpec): Promise<BenchGateway> {
  const port = await freePort();
  // The same heap limit for both tables, large enough for the object-heavy one.
  const heapMB = Math.max(4096, Math.ceil((preload * 700) / 2 ** 20));
  const churning = workingSet() > 1 && preload > 0;
  const keys = churning ? Math.round(workingSet() * Number(args.preload)) : 0;
  // The churn control acks at the tables' miss rate: (W-1)/W of their acks miss, nearly all of its own do.
  const churnRate = role === 'churn control' ? Math.round((Number(args['churn-rate']) * (workingSet() - 1)) / workingSet()) : Number(args['churn-rate']);
  const gatewayArgs = ['--table', impl, '--preload', String(preload), '--preload-channel-size', args['preload-channel-size'], '--working-set-keys', String(keys), '--churn-rate', String(churnRate)];
  // The working set is written to the keyspace once per invocation, by its first churning gateway.
  if (churning && !args.seeded && !seededThisRun) {
    gatewayArgs.push('--seed-working-set');
    seededThisRun = true;
  }
  const child = spawnNode([...SERVER_NODE_FLAGS, ...extraNodeFlags(), '--expose-gc', `--max-old-space-size=${heapMB}`, join(HERE, 'gc-spikes-gateway.js'), ...gatewayArgs], GATEWAY_CPU, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      CASSANDRA_KEYSPACE: args.keyspace,
      // Churn: exactly full, so every miss evicts (the swarm's own states compete too).
      READSTATE_CACHE_CAPACITY: String(churning ? preload : preload + CAPACITY_HEADROOM),
      // The simulator's sessions send far more than a person would; the limit is not under test.
      GATEWAY_RATE_LIMIT: '1000000000',
      LOG_LEVEL: 'warn',
    },
  });
  const reports: GatewayReport[] = [];
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<BenchGateway['ready']>((resolveReady, reject) => {
    child.once('exit', (code) => reject(new Error(`${impl} gateway exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      if (line.startsWith('{"benchSecond"')) reports.push((JSON.parse(line) as { benchSecond: GatewayReport }).benchSecond);
      else if (line.startsWith('{"benchReady"')) resolveReady((JSON.parse(line) as { benchReady: BenchGateway['ready'] }).benchReady);
      else process.stderr.write(`[${impl} gateway] ${line}\n`);
    });
  });
  return { child, port, ready, reports };
}

function stopGateway(gateway: BenchGateway): Promise<void> {
  return new Promise((resolveStop) => {
    if (gateway.child.exitCode !== null) return resolveStop();
    const killer = setTimeout(() => gateway.child.kill('SIGKILL'), 60_000);
    gateway.child.once('exit', () => {
      clearTimeout(killer);
      resolveStop();
    });
    gateway.child.kill('SIGTERM');
  });
}

function runSimulator(port: number, seconds: number): Promise<SimSummary> {
  const flags = {
    url: `ws://127.0.0.1:${port}/gateway`,
    seconds: String(seconds),
    'warmup-seconds': args['warmup-seconds'],
    rate: args.rate,
    users: args.users,
    channels: args.channels,
    'max-channel-size': args['max-channel-size'],
    encoding: args.encoding,
    seed: args.seed,
  };
  const argv = Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value]);
  return new Promise((resolveSim, reject) => {
    // The simulator keeps V8's default GC, unlike the gateways: its heap holds thousands of
    // sockets, and --single-threaded-gc also turns off concurrent marking, so every major
    // mark ran on its loop. A 60 s run (1M preload) had 18 seconds with a simulator pause over
    // 5 ms that way, against 3 and 4 with the default; each one delays the receipts it times.
    const child = spawnNode([join(ROOT, 'dist/client-sim/client-sim.js'), ...argv], SIMULATOR_CPU, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`client-sim exited with ${code}`));
      resolveSim(JSON.parse(out.trim().split('\n').at(-1)!) as SimSummary);
    });
  });
}

/**
 * Index (t - 1) of the simulator's second that holds `epochMs`: second t spans
 * [measureStartedAt + (t-1) s, measureStartedAt + t s).
 */
function secondIndex(epochMs: number, measureStartedAt: number): number {
  return Math.floor((epochMs - measureStartedAt) / 1000);
}

/**
 * The gateway's reports laid over the simulator's seconds. A GC pause falls in the second it
 * started in; a loop-delay maximum (over the second before its report) in the second that
 * holds that second's middle.
 */
function gatewaySeconds(reports: readonly GatewayReport[], measureStartedAt: number, seconds: number): GatewaySecond[] {
  const out: GatewaySecond[] = Array.from({ length: seconds }, (_, i) => ({ t: i + 1, gcMaxMs: 0, gcMaxKind: 0, gcMs: 0, loopDelayMaxMs: 0, misses: 0, evictions: 0 }));
  reports.forEach((report, r) => {
    const i = secondIndex(report.at - 500, measureStartedAt);
    if (i >= 0 && i < seconds) {
      out[i].loopDelayMaxMs = Math.max(out[i].loopDelayMaxMs, report.loopDelayMaxMs);
      // The totals grew by this much over the second before the report.
      if (r > 0) {
        out[i].misses += report.misses - reports[r - 1].misses;
        out[i].evictions += report.evictions - reports[r - 1].evictions;
      }
    }
    for (const [startedAt, ms, kind] of report.gcPauses) {
      const j = secondIndex(startedAt, measureStartedAt);
      if (j < 0 || j >= seconds) continue;
      if (ms > out[j].gcMaxMs) {
        out[j].gcMaxMs = ms;
        out[j].gcMaxKind = kind;
      }
      out[j].gcMs = Math.round((out[j].gcMs + ms) * 100) / 100;
    }
  });
  return out;
}

/** CPU steal per simulator second: a one-second sample falls, like a loop-delay maximum, in the second that holds its middle. */
function stealSeconds(samples: readonly [number, number][], measureStartedAt: number, seconds: number): number[] {
  const out = new Array<number>(seconds).fill(0);
  for (const [at, pct] of samples) {
    const i = secondIndex(at - 500, measureStartedAt);
    if (i >= 0 && i < seconds) out[i] = pct;
  }
  return out;
}

async function runOne(spec: GatewaySpec, seconds: number): Promise<Run> {
  const { impl, preload } = spec;
  process.stderr.write(`${impl} (${spec.role}): starting a gateway with ${preload} preloaded read states\n`);
  const gateway = await startGateway(spec);
  process.stderr.write(`${impl}: ready on port ${gateway.port} (preload ${gateway.ready.preloadMs} ms, heap ${gateway.ready.heapUsedMB} MiB, rss ${gateway.ready.rssMB} MiB)\n`);
  let peakRss = rssOf(gateway.child.pid!);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(gateway.child.pid!))), 1000);
  const steal = new HostStealSampler();
  steal.start();
  try {
    const sim = await runSimulator(gateway.port, seconds);
    const perGatewaySecond = gatewaySeconds(gateway.reports, sim.measureStartedAt, seconds);
    const stealPerSecond = stealSeconds(steal.samples, sim.measureStartedAt, seconds);
    const spikes = spikeStats(sim.perSecond, SPIKE_FACTOR);
    const spikeSeconds = spikeSecondsOf(sim.perSecond, SPIKE_FACTOR, spikes.medianP99us);
    const result: RunResult = {
      impl,
      preload,
      role: spec.role,
      seconds,
      ...spikes,
      rssMB: peakRss,
      p50us: sim.latency.all.p50us,
      p999us: sim.latency.all.p999us,
      gcMaxMs: Math.max(0, ...perGatewaySecond.map((s) => s.gcMaxMs)),
      gcTotalMs: Math.round(perGatewaySecond.reduce((sum, s) => sum + s.gcMs, 0)),
      gatewayLoopDelayMaxMs: Math.max(0, ...perGatewaySecond.map((s) => s.loopDelayMaxMs)),
      heapUsedMBAfterPreload: gateway.ready.heapUsedMB,
      preloadMs: gateway.ready.preloadMs,
      messagesPerSecond: Math.round(sim.messagesSent / (seconds + Number(args['warmup-seconds']))),
      updatesPerSecond: Math.round(sim.latency.all.count / seconds),
      missedUpdates: sim.missedUpdates,
      simulatorLoopDelayMaxUs: sim.simulatorLoopDelay.maxUs,
      hostStealPct: meanOf(stealPerSecond),
      spikeHostStealPct: meanOf(spikeSeconds.map((s) => stealPerSecond[s.t - 1] ?? 0)),
      ...churnRates(gateway.reports, sim.measureStartedAt, seconds),
    };
    return { result, measureStartedAt: sim.measureStartedAt, series: sim.perSecond, gateway: perGatewaySecond, hostStealPct: stealPerSecond };
  } finally {
    clearInterval(sampler);
    steal.stop();
    await stopGateway(gateway);
  }
}

/** The table's misses, evictions and writes per second over the measured seconds, and the heap at their ends. */
function churnRates(reports: readonly GatewayReport[], measureStartedAt: number, seconds: number): Pick<RunResult, 'missesPerSec' | 'evictionsPerSec' | 'storeWritesPerSec' | 'heapUsedMBStart' | 'heapUsedMBEnd'> {
  const measured = reports.filter((report) => report.at >= measureStartedAt && report.at <= measureStartedAt + seconds * 1000);
  const first = measured[0];
  const last = measured.at(-1);
  if (first === undefined || last === undefined || last === first) return { missesPerSec: 0, evictionsPerSec: 0, storeWritesPerSec: 0, heapUsedMBStart: 0, heapUsedMBEnd: 0 };
  const span = (last.at - first.at) / 1000;
  const rate = (key: 'misses' | 'evictions' | 'writes') => Math.round((last[key] - first[key]) / span);
  return { missesPerSec: rate('misses'), evictionsPerSec: rate('evictions'), storeWritesPerSec: rate('writes'), heapUsedMBStart: first.heapUsedMB, heapUsedMBEnd: last.heapUsedMB };
}

/** Mean, to one decimal; 0 for none. */
function meanOf(values: readonly number[]): number {
  return values.length === 0 ? 0 : Math.round((10 * values.reduce((sum, v) => sum + v, 0)) / values.length) / 10;
}

/** Discord's colours: Go's purple for the object-per-entry cache, Rust's blue for the engine; greys for the controls. */
function colorOf(result: RunResult): string {
  if (result.role === 'churn control') return '#5f6368';
  if (result.preload === 0) return '#b0b4b9';
  return result.impl === 'lru-cache' ? '#8e44ad' : '#2f80ed';
}

function overlayNameOf(result: RunResult): string {
  const held = result.preload >= 1e6 ? `${result.preload / 1e6}M` : result.preload.toLocaleString('en-US');
  if (result.role === 'churn control') return `control: engine, ${held}, same churn`;
  if (result.preload === 0) return 'control: engine, empty';
  return `${result.impl}, ${held}`;
}

/** Who a run was, for the chart: a table and what it held, or one of the controls. */
function heldBy(result: RunResult, churnMode: boolean): string {
  const held = `${result.impl} holding ${result.preload.toLocaleString('en-US')} read states`;
  if (result.role === 'churn control') return `control: ${held}, same churn`;
  return churnMode && result.preload === 0 ? 'control: holding none, no churn' : held;
}

async function writeChart(results: ResultsFile, path: string): Promise<void> {
  const { sim } = results.conditions;
  const preload = Math.max(0, ...results.runs.map((run) => run.result.preload));
  // Without a control (--skip-control, or a results file from before it existed) the title must not claim one.
  const withControl = preload > 0 && results.runs.some((run) => run.result.preload === 0 || run.result.role === 'churn control');
  // Results files from before churn mode have no workingSet: the constant mode.
  const churnMode = (results.conditions.workingSet ?? '1x') !== '1x';
  const svg = await renderSpikeChart(
    results.runs.map(({ result, series, gateway }) => ({
      name: overlayNameOf(result),
      color: colorOf(result),
      label: `${heldBy(result, churnMode)}\n${result.spikeSeconds} spike second${result.spikeSeconds === 1 ? '' : 's'}, longest GC pause ${result.gcMaxMs} ms, peak RSS ${result.rssMB} MiB`,
      medianP99us: result.medianP99us,
      series,
      gateway,
    })),
    churnMode
      ? `Per-second end-to-end latency under eviction churn: a full table of ${preload.toLocaleString('en-US')} read states, ${results.conditions.workingSet} as many keys in Cassandra${withControl ? ', and the controls' : ''}`
      : `Per-second end-to-end latency with ${preload.toLocaleString('en-US')} read states in the table${withControl ? ' (and an empty engine table as a control)' : ''}`,
    `same client-sim load on each (${sim.rate} messages/s, ${sim.users} users, ${sim.channels} channels)${churnMode ? `, churn of ${results.conditions.churnRate} acks/s` : ''}; dashed: 3 × the run's median p99, a second above it is a spike`,
  );
  writeFileSync(path, svg);
}

async function main(): Promise<void> {
  const from = args['chart-from'];
  if (from !== undefined) {
    await writeChart(JSON.parse(readFileSync(from, 'utf8')) as ResultsFile, `${from.replace(/\.json$/, '')}.svg`);
    return;
  }
  const preload = Number(args.preload);
  const seconds = Number(args.seconds);
  const impls = args.impls.split(',') as TableImpl[];
  if (!Number.isSafeInteger(preload) || preload < 0 || !Number.isSafeInteger(seconds) || seconds < 1) throw new Error('--preload and --seconds must be integers');
  if (impls.some((impl) => !TABLE_IMPLS.includes(impl))) throw new Error(`--impls takes ${TABLE_IMPLS.join(',')}`);

  if (Number(args.nice) !== 0) setSessionNice(Number(args.nice), 'gc-spikes');
  const loadAverage = () => loadavg().map((x) => Number(x.toFixed(2)));
  const startedWith = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: loadAverage(),
    nice: Number(args.nice),
    preloadChannelSize: Number(args['preload-channel-size']),
    pinned: args.pin,
    workingSet: args['working-set'],
    churnRate: Number(args['churn-rate']),
    gatewayNodeFlags: extraNodeFlags(),
    sim: {
      rate: Number(args.rate),
      users: Number(args.users),
      channels: Number(args.channels),
      maxChannelSize: Number(args['max-channel-size']),
      encoding: args.encoding,
      warmupSeconds: Number(args['warmup-seconds']),
      seed: Number(args.seed),
    },
  };
  const specs: GatewaySpec[] = impls.map((impl) => ({ impl, preload, role: 'table' }));
  if (!args['skip-control'] && preload > 0) {
    // Just before the engine's run, so that both meet the machine in about the same state, and
    // whatever the previous gateway's shutdown leaves behind (its last flush, the store node's
    // compactions) falls on the engine's run, not on the control's.
    const engineAt = specs.findIndex((spec) => spec.impl === 'engine');
    const controls: GatewaySpec[] = [{ impl: 'engine', preload: 0, role: 'control' }];
    if (workingSet() > 1) controls.push({ impl: 'engine', preload: Math.min(preload, CHURN_CONTROL_STATES), role: 'churn control' });
    specs.splice(Math.max(0, engineAt), 0, ...controls);
  }
  const runs: Run[] = [];
  for (const spec of specs) {
    const run = await runOne(spec, seconds);
    runs.push(run);
    const r = run.result;
    process.stdout.write(
      args.json
        ? `${JSON.stringify(r)}\n`
        : `${spec.impl} (${spec.preload} preloaded): median p99 ${r.medianP99us} µs, max p99 ${r.maxP99us} µs, max ${r.maxUs} µs, ${r.spikeSeconds} spike seconds, rss ${r.rssMB} MiB, longest GC pause ${r.gcMaxMs} ms; misses ${r.missesPerSec}/s, evictions ${r.evictionsPerSec}/s, store writes ${r.storeWritesPerSec}/s, heap ${r.heapUsedMBStart} -> ${r.heapUsedMBEnd} MiB\n`,
    );
  }

  mkdirSync(args.out, { recursive: true });
  const base = join(args.out, `gc-spikes-${preload}${workingSet() > 1 ? `-churn-${workingSet()}x` : ''}`);
  const results: ResultsFile = { conditions: { ...startedWith, loadAverageAtEnd: loadAverage() }, runs };
  writeFileSync(`${base}.json`, `${JSON.stringify(results)}\n`);
  await writeChart(results, `${base}.svg`);
  process.stderr.write(`wrote ${base}.json and ${base}.svg\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`gc-spikes: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
