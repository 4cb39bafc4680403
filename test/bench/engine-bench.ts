// Read-state table benchmark: the engine's typed-array slab against what a Node developer
// would otherwise pick (lru-cache with object values, or a Map of objects with a linked
// list), on the same workload, each in a child process of its own so that heaps and RSS
// do not mix.
//
// Workload: the table is first filled to capacity, then `ops` updates hit keys drawn from a
// Zipf-like distribution over a key space twice the capacity, so misses (and evictions of
// dirty entries) go on all the time. Each update acks and counts a mention, and marks the
// entry dirty; every 1,000 updates the due entries are taken for a (counted, not performed)
// write, with a virtual clock of 1 µs per update and a 100 ms flush delay. The first
// WARMUP_OPS updates are run and not measured: they hold the JIT's compilations of the
// update path (4 ms stalls otherwise), which a long-running gateway pays once at start.
// Then two passes of `ops` updates each, continuing the same stream: a throughput pass with
// no per-update clock read (opsPerSec), and a latency pass that times every update (the
// percentiles and maxUs; its own rate is timedOpsPerSec). GC figures cover both passes.
//
//   npm run bench:engine -- --capacity 8000000 --ops 8000000 --json
//
// One JSON line per impl on stdout, then a ratio line; progress on stderr.

import { spawn } from 'node:child_process';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { type DirtyEvictionSink, type FlushSink, ReadStateTable } from '../../src/engine/read-state-table.js';
import { Xorshift, zipfIndex } from './zipf.js';

const IMPLS = ['engine', 'lru-cache', 'map'] as const;
type Impl = (typeof IMPLS)[number];

/** V8's Map (and so lru-cache) cannot hold more than 2^24 entries. */
const MAP_LIMIT = 2 ** 24;
const FLUSH_DELAY_US = 100_000;
const FLUSH_EVERY = 1000;
const WARMUP_OPS = 200_000;
const ZIPF_S = 0.9;

interface Result {
  impl: Impl;
  capacity: number;
  ops: number;
  opsPerSec: number;
  /** Updates per second in the latency pass, clock reads included. */
  timedOpsPerSec: number;
  p50us: number;
  p99us: number;
  p999us: number;
  maxUs: number;
  gcMaxMs: number;
  gcTotalMs: number;
  bytesPerEntry: number;
  evictions: number;
  flushed: number;
}

/** The operations every impl offers the driver. Keys are (user, channel) from a key number. */
interface Table {
  /** Preload: insert key k, known absent. */
  fill(k: number, nowUs: number): void;
  /** One update of key k at nowUs (a miss inserts, evicting when full). */
  update(k: number, nowUs: number, ack: number): void;
  takeDue(nowUs: number): void;
  readonly evictions: number;
  readonly flushed: number;
}

// ---- Keys and the Zipf-like stream ---------------------------------------------------------

// Key k: user = 2^60 + floor(k / 16), channel = 2^61 + (k % 16): ids above 2^53, as in production.
const userHi = (k: number) => 0x10000000 + Math.floor(k / 16 / 4294967296);
const userLo = (k: number) => Math.floor(k / 16) % 4294967296;
const channelHi = () => 0x20000000;
const channelLo = (k: number) => k % 16;
// The object-holding impls key by the ids' decimal strings, as they arrive on the wire (19 digits).
const keyString = (k: number) => `1152921${String(Math.floor(k / 16)).padStart(12, '0')}:2305843${String(k % 16).padStart(12, '0')}`;



// ---- The impls -----------------------------------------------------------------------------

class EngineTable implements Table, FlushSink, DirtyEvictionSink {
  private readonly table: ReadStateTable;
  flushed = 0;
  constructor(capacity: number) {
    this.table = new ReadStateTable(capacity, FLUSH_DELAY_US, this);
  }
  get evictions(): number {
    return this.table.evictions;
  }
  fill(k: number): void {
    this.table.insert(userHi(k), userLo(k), channelHi(), channelLo(k));
  }
  update(k: number, nowUs: number, ack: number): void {
    const t = this.table;
    let slot = t.get(userHi(k), userLo(k), channelHi(), channelLo(k));
    if (slot === -1) slot = t.insert(userHi(k), userLo(k), channelHi(), channelLo(k));
    t.setAck(slot, 0, ack);
    t.setMentionBias(slot, t.mentionBias(slot) + 1);
    t.markDirty(slot, nowUs);
  }
  takeDue(nowUs: number): void {
    this.table.takeDue(nowUs, 1 << 30, this);
  }
  flushEntry(): void {
    this.flushed++;
  }
  acceptDirtyEviction(): boolean {
    this.flushed++;
    return true;
  }
}

interface StateObject {
  userId: string;
  channelId: string;
  ack: number;
  mentions: number;
  dirtySince: number;
}

/** The object impls' update: the same fields as the engine's, and a first change queues the entry. */
function applyUpdate<S extends StateObject>(state: S, key: string, dirty: Map<string, S>, nowUs: number, ack: number): void {
  state.ack = ack;
  state.mentions++;
  if (state.dirtySince < 0) {
    state.dirtySince = nowUs;
    dirty.set(key, state);
  }
}

/** The object impls' flush: a Map in first-change order, taken from the front while due. */
function takeDueFromDirtyMap(dirty: Map<string, StateObject>, nowUs: number): number {
  let taken = 0;
  for (const [key, state] of dirty) {
    if (nowUs - state.dirtySince < FLUSH_DELAY_US) break;
    state.dirtySince = -1;
    dirty.delete(key);
    taken++;
  }
  return taken;
}

class LruCacheTable implements Table {
  private readonly dirty = new Map<string, StateObject>();
  private readonly cache: LRUCache<string, StateObject>;
  evictions = 0;
  flushed = 0;
  constructor(capacity: number) {
    this.cache = new LRUCache<string, StateObject>({
      max: capacity,
      dispose: (value, key, reason) => {
        if (reason !== 'evict') return;
        this.evictions++;
        if (this.dirty.delete(key)) this.flushed++;
      },
    });
  }
  fill(k: number): void {
    const key = keyString(k);
    const [userId, channelId] = key.split(':');
    this.cache.set(key, { userId, channelId, ack: 0, mentions: 0, dirtySince: -1 });
  }
  update(k: number, nowUs: number, ack: number): void {
    const key = keyString(k);
    let state = this.cache.get(key);
    if (state === undefined) {
      const [userId, channelId] = key.split(':');
      state = { userId, channelId, ack: 0, mentions: 0, dirtySince: -1 };
      this.cache.set(key, state);
    }
    applyUpdate(state, key, this.dirty, nowUs, ack);
  }
  takeDue(nowUs: number): void {
    this.flushed += takeDueFromDirtyMap(this.dirty, nowUs);
  }
}

interface LinkedState extends StateObject {
  key: string;
  prev: LinkedState | null;
  next: LinkedState | null;
}

class MapTable implements Table {
  private readonly map = new Map<string, LinkedState>();
  private readonly dirty = new Map<string, LinkedState>();
  private head: LinkedState | null = null;
  private tail: LinkedState | null = null;
  evictions = 0;
  flushed = 0;
  constructor(private readonly capacity: number) {}
  fill(k: number): void {
    this.insert(keyString(k));
  }
  update(k: number, nowUs: number, ack: number): void {
    const key = keyString(k);
    let state = this.map.get(key);
    if (state === undefined) state = this.insert(key);
    else this.moveToHead(state);
    applyUpdate(state, key, this.dirty, nowUs, ack);
  }
  takeDue(nowUs: number): void {
    this.flushed += takeDueFromDirtyMap(this.dirty, nowUs);
  }
  private insert(key: string): LinkedState {
    if (this.map.size >= this.capacity && this.tail !== null) {
      const victim = this.tail;
      this.unlink(victim);
      this.map.delete(victim.key);
      this.evictions++;
      if (this.dirty.delete(victim.key)) this.flushed++;
    }
    const [userId, channelId] = key.split(':');
    const state: LinkedState = { key, userId, channelId, ack: 0, mentions: 0, dirtySince: -1, prev: null, next: null };
    this.map.set(key, state);
    this.linkHead(state);
    return state;
  }
  private moveToHead(state: LinkedState): void {
    if (this.head === state) return;
    this.unlink(state);
    this.linkHead(state);
  }
  private linkHead(state: LinkedState): void {
    state.prev = null;
    state.next = this.head;
    if (this.head !== null) this.head.prev = state;
    this.head = state;
    if (this.tail === null) this.tail = state;
  }
  private unlink(state: LinkedState): void {
    if (state.prev !== null) state.prev.next = state.next;
    else this.head = state.next;
    if (state.next !== null) state.next.prev = state.prev;
    else this.tail = state.prev;
  }
}

// ---- Measurement ---------------------------------------------------------------------------

/** Latency histogram: 0.1 µs buckets up to 100 ms, exact max kept aside. */
class Histogram {
  private readonly buckets = new Uint32Array(1_000_000);
  private count = 0;
  max = 0;
  record(us: number): void {
    const bucket = Math.min(this.buckets.length - 1, Math.floor(us * 10));
    this.buckets[bucket]++;
    this.count++;
    if (us > this.max) this.max = us;
  }
  percentile(p: number): number {
    const target = Math.ceil(this.count * p);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i];
      if (seen >= target) return (i + 1) / 10;
    }
    return this.max;
  }
}

function rssNow(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

const turnEventLoop = () => new Promise((resolve) => setTimeout(resolve, 50));

/**
 * Throughput: keys[from..to) with no clock read per update, so that the rate is the
 * table's alone. A clock read costs ~180 ns on this VM on its own; inside the loop it
 * mostly overlaps the update's cache misses (the timed pass runs 4-9 % slower).
 */
function runUpdates(impl: Impl, table: Table, keys: Uint32Array, from: number, to: number): number {
  const started = performance.now();
  let lastProgress = started;
  for (let i = from; i < to; i++) {
    table.update(keys[i], i, i);
    if (i % FLUSH_EVERY === 0) table.takeDue(i);
    if ((i & 0xffff) === 0 && performance.now() - lastProgress > 2000) {
      lastProgress = performance.now();
      process.stderr.write(`${impl}: throughput pass ${i - from}/${to - from} updates\n`);
    }
  }
  return (performance.now() - started) / 1000;
}

/**
 * Latency: keys[from..to), each update timed. A function of its own, not inline in the
 * async runChild: there, locals live in the generator's context and every double stored to
 * them (the clock) would allocate a heap number per update.
 */
function timeUpdates(impl: Impl, table: Table, keys: Uint32Array, from: number, to: number, histogram: Histogram): number {
  const started = performance.now();
  let previous = started;
  let lastProgress = started;
  for (let i = from; i < to; i++) {
    table.update(keys[i], i, i);
    if (i % FLUSH_EVERY === 0) table.takeDue(i);
    // One clock read per update: each update's time includes the loop around it, the same for every impl.
    const now = performance.now();
    histogram.record((now - previous) * 1000);
    previous = now;
    if ((i & 0xffff) === 0 && now - lastProgress > 2000) {
      lastProgress = now;
      process.stderr.write(`${impl}: latency pass ${i - from}/${to - from} updates\n`);
    }
  }
  return (performance.now() - started) / 1000;
}

async function runChild(impl: Impl, capacity: number, ops: number): Promise<Result> {
  const gcPauses: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.push(entry.duration);
  });
  observer.observe({ entryTypes: ['gc'] });

  // The key stream and the histogram exist before the baseline: only the table counts.
  const random = new Xorshift(0x9e3779b9);
  // uint32, not float64: a double passed to a call that is not inlined is boxed, which
  // would make the driver itself allocate on every update.
  const keys = new Uint32Array(WARMUP_OPS + 2 * ops);
  for (let i = 0; i < keys.length; i++) keys[i] = zipfIndex(random, capacity * 2, ZIPF_S);
  const histogram = new Histogram();
  const baseline = rssNow();

  const table: Table = impl === 'engine' ? new EngineTable(capacity) : impl === 'lru-cache' ? new LruCacheTable(capacity) : new MapTable(capacity);
  let lastProgress = performance.now();
  for (let k = 0; k < capacity; k++) {
    table.fill(k, 0);
    if ((k & 0xffff) === 0 && performance.now() - lastProgress > 2000) {
      lastProgress = performance.now();
      process.stderr.write(`${impl}: preloading ${k}/${capacity}\n`);
    }
  }
  for (let i = 0; i < WARMUP_OPS; i++) {
    table.update(keys[i], i, i);
    if (i % FLUSH_EVERY === 0) table.takeDue(i);
  }
  // GC entries are delivered asynchronously: let the preload's arrive before forgetting them.
  await turnEventLoop();
  gcPauses.length = 0;

  const seconds = runUpdates(impl, table, keys, WARMUP_OPS, WARMUP_OPS + ops);
  const timedSeconds = timeUpdates(impl, table, keys, WARMUP_OPS + ops, keys.length, histogram);
  await turnEventLoop();
  observer.disconnect();
  const bytesPerEntry = (rssNow() - baseline) / capacity;
  const round = (x: number, digits = 2) => Number(x.toFixed(digits));
  return {
    impl,
    capacity,
    ops,
    opsPerSec: Math.round(ops / seconds),
    timedOpsPerSec: Math.round(ops / timedSeconds),
    p50us: round(histogram.percentile(0.5)),
    p99us: round(histogram.percentile(0.99)),
    p999us: round(histogram.percentile(0.999)),
    maxUs: round(histogram.max, 1),
    gcMaxMs: round(Math.max(0, ...gcPauses)),
    gcTotalMs: round(gcPauses.reduce((a, b) => a + b, 0), 1),
    bytesPerEntry: round(bytesPerEntry, 1),
    evictions: table.evictions,
    flushed: table.flushed,
  };
}

// ---- Driver --------------------------------------------------------------------------------

function argValue(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}

function spawnImpl(impl: Impl, capacity: number, ops: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const heapMb = Math.max(4096, Math.ceil((capacity * 600) / 2 ** 20));
    const child = spawn(
      process.execPath,
      ['--expose-gc', `--max-old-space-size=${heapMb}`, fileURLToPath(import.meta.url), '--child', impl, '--capacity', String(capacity), '--ops', String(ops)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${impl} child exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Result);
    });
  });
}

async function main(): Promise<void> {
  const capacity = Number(argValue('--capacity', '1000000'));
  const ops = Number(argValue('--ops', String(capacity)));
  const child = argValue('--child', '');
  if (!Number.isInteger(capacity) || capacity < 1 || !Number.isInteger(ops) || ops < 1) {
    throw new Error('usage: engine-bench --capacity N --ops N [--impls engine,lru-cache,map] [--json]');
  }
  if (child !== '') {
    process.stdout.write(`${JSON.stringify(await runChild(child as Impl, capacity, ops))}\n`);
    return;
  }
  const json = process.argv.includes('--json');
  const impls = argValue('--impls', IMPLS.join(',')).split(',') as Impl[];
  const results = new Map<Impl, Result>();
  for (const impl of impls) {
    if (impl !== 'engine' && capacity > MAP_LIMIT) {
      process.stderr.write(`${impl}: skipped: V8's Map holds at most 2^24 entries, capacity is ${capacity}\n`);
      continue;
    }
    process.stderr.write(`${impl}: starting (capacity ${capacity}, ops ${ops})\n`);
    const result = await spawnImpl(impl, capacity, ops);
    results.set(impl, result);
    process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${impl}: ${result.opsPerSec} ops/s, p99 ${result.p99us} µs, max ${result.maxUs} µs, GC max ${result.gcMaxMs} ms, ${result.bytesPerEntry} B/entry\n`);
  }
  const engine = results.get('engine');
  const peer = results.get('lru-cache');
  if (engine !== undefined && peer !== undefined) {
    const ratio = {
      opsPerSec: Number((engine.opsPerSec / peer.opsPerSec).toFixed(2)),
      bytesPerEntry: Number((peer.bytesPerEntry / engine.bytesPerEntry).toFixed(2)),
      maxUs: Number((peer.maxUs / engine.maxUs).toFixed(2)),
    };
    process.stdout.write(`${JSON.stringify({ ratio })}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
