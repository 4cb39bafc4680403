// The gateway process of `npm run bench:gc-spikes`: wired like src/main.ts (config ->
// Cassandra store -> persistent read states -> gateway), except that the read-state table
// is chosen on the command line and the table is preloaded with N read states before the
// port opens.
//
//   node --expose-gc dist/test/bench/gc-spikes-gateway.js --table engine|lru-cache --preload N
//
// Environment as for the gateway (PORT, CASSANDRA_KEYSPACE, READSTATE_CACHE_CAPACITY, ...).
// Prints one JSON line {"benchReady": ...} on stdout once it listens, then a line
// {"benchSecond": {at, loopDelayMaxMs, gcPauses: [[startedAtEpochMs, ms, kind], ...]}} every
// second: this process's own garbage-collection pauses and event-loop delay, so spikes the
// clients see can be matched with what the gateway was doing.
//
// The preloaded states stand for the other users of a busy node: resident, clean entries,
// as if loaded from the store earlier, spread over channels of `--preload-channel-size`
// members. They are put into the table directly (not over the wire) and are not in
// Cassandra: no client ever asks for them and, being clean, they are never written, so the
// store is not involved in either run. What they cost is what this benchmark measures: the
// memory they hold and the garbage collector's work over it while the live load runs.

import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import type { ReadStateTable } from '../../src/engine/read-state-table.js';
import { SNOWFLAKE_EPOCH_MS } from '../../src/engine/snowflake.js';
import { Gateway } from '../../src/gateway/app.js';
import { openReadStates } from '../../src/read-state-service.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { LruCacheReadStateTable, TABLE_IMPLS, type TableImpl } from './lru-cache-read-state-table.js';

// Preloaded ids live far from the simulator's (which start at 2^60): users at 2^62 + u,
// channels at 2^62 + 2^40 + c.
const PRELOAD_USER_HI = 0x40000000;
const PRELOAD_CHANNEL_HI = 0x40000100;
/** Each preloaded user is a member of about this many channels. */
const CHANNELS_PER_USER = 20;

function preload(readStates: PersistentReadStates, count: number, channelSize: number, nowMs: number): void {
  const engine = readStates.engine;
  const table: ReadStateTable = engine.table;
  const userCount = Math.max(channelSize, Math.ceil(count / CHANNELS_PER_USER));
  // A plausible acked message: a snowflake from about a day ago (ms since 2015 << 22).
  const ackedAt = (nowMs - SNOWFLAKE_EPOCH_MS - 86_400_000) * 2 ** 22;
  const ackHi = Math.floor(ackedAt / 2 ** 32);
  let lastProgress = nowMs;
  for (let i = 0; i < count; i++) {
    const channel = Math.floor(i / channelSize);
    // Consecutive users (mod userCount) per channel: distinct within a channel as long as
    // channelSize <= userCount; the stride spreads each user over many channels.
    const user = (channel * 7 + (i % channelSize)) % userCount;
    if (i % channelSize === 0) engine.channels.findOrCreate(PRELOAD_CHANNEL_HI, channel);
    const slot = table.insert(PRELOAD_USER_HI, user, PRELOAD_CHANNEL_HI, channel);
    if (slot === -1) throw new Error(`table full after ${i} preloaded states: raise READSTATE_CACHE_CAPACITY`);
    table.setAck(slot, ackHi, i);
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
    },
    strict: true,
  });
  const impl = values.table as TableImpl;
  const count = Number(values.preload);
  const channelSize = Number(values['preload-channel-size']);
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

  const preloadStarted = performance.now();
  preload(readStates, count, channelSize, Date.now());
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

  reportEverySecond();

  const stop = async () => {
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
function reportEverySecond(): void {
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
    process.stdout.write(`${JSON.stringify({ benchSecond: { at: Date.now(), loopDelayMaxMs: round(loopDelay.max / 1e6), gcPauses } })}\n`);
    gcPauses = [];
    loopDelay.reset();
  }, 1000).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`gc-spikes gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
