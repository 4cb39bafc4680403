// The gateway process of `npm run bench:gc-spikes`: wired like src/main.ts (config ->
// Cassandra store -> persistent read states -> gateway), except that the read-state table
// is chosen on the command line and the table is preloaded with N read states before the
// port opens.
//
//   node --expose-gc dist/test/bench/gc-spikes-gateway.js --table engine|lru-cache --preload N [--working-set-keys K --churn-rate R]
//
// Environment as for the gateway (PORT, CASSANDRA_KEYSPACE, READSTATE_CACHE_CAPACITY, ...).
// Prints one JSON line {"benchReady": ...} on stdout once it listens, then a line
// {"benchSecond": {at, loopDelayMaxMs, gcPauses: [[startedAtEpochMs, ms, kind], ...], misses,
// evictions, writes, heapUsedMB}} every second: this process's own garbage-collection pauses
// and event-loop delay, so spikes the clients see can be matched with what the gateway was
// doing, and the table's running totals of misses (each a load), evictions and store writes.
//
// The preloaded states stand for the other users of a busy node: resident, clean entries,
// as if loaded from the store earlier, spread over channels of `--preload-channel-size`
// members. They are put into the table directly (not over the wire). In the constant mode
// (no `--working-set-keys`) they are not in Cassandra: no client ever asks for them and, being
// clean, they are never written, so the store is not involved. What they cost is what the
// benchmark measures: the memory they hold and the garbage collector's work over it while
// the live load runs. With `--working-set-keys K` above N the table is full and a churn driver
// (churn-load.ts) keeps it missing, loading, evicting and writing at `--churn-rate` acks/s
// over K keys, all of them written to Cassandra first (the churn control is the same with a
// small N).

import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import type { ReadStateTable } from '../../src/engine/read-state-table.js';
import { Gateway } from '../../src/gateway/app.js';
import { openReadStates } from '../../src/read-state-service.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { ChurnDriver, dayOldAck, KeyLayout, postChurnMessages, PRELOAD_CHANNEL_HI, PRELOAD_USER_HI, seedWorkingSet } from './churn-load.js';
import { LruCacheReadStateTable, TABLE_IMPLS, type TableImpl } from './lru-cache-read-state-table.js';

function preload(readStates: PersistentReadStates, layout: KeyLayout, count: number, nowMs: number): void {
  const engine = readStates.engine;
  const table: ReadStateTable = engine.table;
  let lastProgress = nowMs;
  for (let i = 0; i < count; i++) {
    const channel = layout.channelOf(i);
    if (i % layout.channelSize === 0) engine.channels.findOrCreate(PRELOAD_CHANNEL_HI, channel);
    const slot = table.insert(PRELOAD_USER_HI, layout.userOf(i), PRELOAD_CHANNEL_HI, channel);
    if (slot === -1) throw new Error(`table full after ${i} preloaded states: raise READSTATE_CACHE_CAPACITY`);
    const [ackHi, ackLo] = dayOldAck(nowMs, i);
    table.setAck(slot, ackHi, ackLo);
    if (table instanceof LruCacheReadStateTable) table.refreshEntry(slot);
    if ((i & 0xffff) === 0 && Date.now() - lastProgress > 5000) {
      lastProgress = Date.now();
      process.stderr.write(`preload: ${i}/${count}\n`);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      table: { type: 'string', default: 'engine' },
      preload: { type: 'string', default: '0' },
      'preload-channel-size': { type: 'string', default: '1000' },
      /** Keys the churn acks over; past --preload (the table's own), the table misses and evicts. 0: no churn. */
      'working-set-keys': { type: 'string', default: '0' },
      'churn-rate': { type: 'string', default: '3500' },
      /** Churn mode: write the working set to Cassandra first (an earlier run on the keyspace may have). */
      'seed-working-set': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const workingSetKeys = Number(values['working-set-keys']);
  const churnRate = Number(values['churn-rate']);
  const impl = values.table as TableImpl;
  const count = Number(values.preload);
  const channelSize = Number(values['preload-channel-size']);
  if (!Number.isSafeInteger(workingSetKeys) || workingSetKeys < 0) throw new Error('--working-set-keys must be an integer');
  if (!TABLE_IMPLS.includes(impl)) throw new Error(`--table must be one of ${TABLE_IMPLS.join(', ')}`);
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(channelSize) || channelSize < 1) throw new Error('--preload and --preload-channel-size must be integers');

  const config = loadConfig();
  if (config.cacheCapacity < count) throw new Error(`READSTATE_CACHE_CAPACITY ${config.cacheCapacity} is below --preload ${count}`);
  const log = pino({ level: config.logLevel });
  const { store, readStates } = await openReadStates(
    config,
    log,
    impl === 'lru-cache' ? (capacity, delay, sink) => new LruCacheReadStateTable(capacity, delay, sink) : undefined,
  );

  const now = Date.now();
  // The preload's keys are the layout's first N, with or without churn.
  const layout = new KeyLayout(Math.max(workingSetKeys, count), channelSize);
  // The idle control (no preload, no working set) stays the bare gateway under the swarm.
  const churning = workingSetKeys > count;
  if (churning && values['seed-working-set']) {
    const seedStarted = performance.now();
    let lastProgress = 0;
    await seedWorkingSet(store, layout, now, (done) => {
      if (performance.now() - lastProgress < 5000) return;
      lastProgress = performance.now();
      process.stderr.write(`seeding the working set: ${done}/${layout.total} rows\n`);
    });
    process.stderr.write(`seeded ${layout.total} rows in ${Math.round(performance.now() - seedStarted)} ms\n`);
  }
  const preloadStarted = performance.now();
  preload(readStates, layout, count, now);
  const message = churning ? postChurnMessages(readStates.engine.channels, layout, now) : undefined;
  const preloadMs = Math.round(performance.now() - preloadStarted);
  // Both runs start measuring from a collected heap, not in the middle of the preload's GC debt.
  (globalThis as { gc?: () => void }).gc?.();

  readStates.start();
  const gateway = new Gateway({ config, readStates, log });
  const port = await gateway.listen();
  const memory = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ benchReady: { impl, preload: count, size: readStates.engine.table.size, port, preloadMs, heapUsedMB: Math.round(memory.heapUsed / 2 ** 20), rssMB: Math.round(memory.rss / 2 ** 20) } })}\n`,
  );

  const churn = message === undefined ? undefined : new ChurnDriver(readStates, layout, message, churnRate);
  churn?.start();
  reportEverySecond(readStates, churn);

  const stop = async () => {
    churn?.stop();
    gateway.close();
    await readStates.stop();
    await store.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

/**
 * Every second: the GC pauses of that second (epoch ms when each started, its length, and
 * its kind as perf_hooks.constants numbers it: 1 minor (scavenge), 4 major
 * (mark-sweep-compact), 8 incremental marking, 16 weak callbacks) and the longest event-loop delay.
 */
function reportEverySecond(readStates: PersistentReadStates, churn: ChurnDriver | undefined): void {
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  let gcPauses: [number, number, number][] = [];
  const round = (ms: number) => Math.round(ms * 100) / 100;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gcPauses.push([Math.round(performance.timeOrigin + entry.startTime), round(entry.duration), kind]);
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const { misses, evictions, writes } = readStates.stats;
    const heapUsedMB = Math.round(process.memoryUsage().heapUsed / 2 ** 20);
    const churnFigures = churn === undefined ? {} : { churnSkipped: churn.skipped, churnFailed: churn.failed };
    process.stdout.write(`${JSON.stringify({ benchSecond: { at: Date.now(), loopDelayMaxMs: round(loopDelay.max / 1e6), gcPauses, misses, evictions, writes, heapUsedMB, ...churnFigures } })}\n`);
    gcPauses = [];
    loopDelay.reset();
  }, 1000).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`gc-spikes gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
