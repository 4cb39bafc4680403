// Write-behind benchmark: a Zipf-like stream of read-state updates through the engine,
// PersistentReadStates and CassandraReadStateStore against a real node, counting the rows
// written and watching the event loop while flushes are in flight.
//
// Workload: `users` users, each a member of `channelsPerUser` random channels, seeded in
// Cassandra and loaded before the stream starts (this measures write-behind, not loads). At
// `rate` updates per second, each update picks a read state by a Zipf-like law over all of
// them (exponent `zipf`) and is an ack of the channel's newest message (70 %) or a new
// message by that member (30 %), half of which are replies mentioning the author of the
// channel's previous message.
//
// Steady state: the first `warmup-s` seconds (one flush window by default) are not counted;
// then, over `measure-s` seconds, updates and the rows written (read states plus channels)
// are counted together, so writesPerUpdate is what a long-running service sees. The rows
// written by the final stop() are reported apart (shutdownWrites). The stream is paced in
// 1 ms steps; updates more than 4 ms late are dropped and counted (droppedUpdates), so a
// stalled process is reported, not hidden behind a catch-up burst.
//
// Event-loop delay over the measured phase, as monitorEventLoopDelay measures it (the time
// between the runs of a 1 ms timer), split in two: samples taken while a store write is in
// flight (eventLoopDelay*, the target) and the others (betweenFlushesEventLoopDelay*).
// monitorEventLoopDelay over the whole phase is reported too (monitorEventLoopDelay*), as a
// check on the split sampler. On a machine where Cassandra shares the CPUs with this process,
// the between-flushes figures show how much delay is CPU starvation rather than flushing.
// The peer (event-loop-peer.ts) runs the same sampler on a worker thread, split by the same
// flag at the same moments: peerEventLoopDelay* is what the machine does to an event loop
// that has no work at all, the floor the bench's own figures are read against.
//
//   npm run bench:store -- --json
//   npm run bench:store -- --rate 20000 --zipf 1.1 --flush-delay-ms 10000 --warmup-s 10 --measure-s 30
//   (also --users, --channels, --channels-per-user, --write-batch-size, --write-behind-in-flight)
//
// Needs a Cassandra node (CASSANDRA_CONTACT_POINTS, default 127.0.0.1:9042); uses a keyspace
// of its own and drops it at the end. Progress on stderr; one JSON line on stdout with --json.

import { type Histogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { CassandraReadStateStore } from '../../src/store/cassandra-store.js';
import { type CreateResult, type Failure, PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { emptyWindow } from '../../src/store/recent-window.js';
import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from '../../src/store/records.js';
import { dropKeyspace } from '../support/cassandra-nodes.js';
import { EventLoopDelayByFlushing, EventLoopPeer } from './event-loop-peer.js';
import { CountingReadStateStore } from '../support/counting-store.js';
import { Xorshift, zipfIndex } from './zipf.js';

interface Options {
  rate: number;
  zipf: number;
  users: number;
  channels: number;
  channelsPerUser: number;
  flushDelayMs: number;
  warmupS: number;
  measureS: number;
  /** Records per store call in PersistentReadStates; undefined keeps its default. */
  writeBatchSize: number | undefined;
  /** Write-behind requests in flight while it keeps up; undefined keeps the default. */
  writeBehindInFlight: number | undefined;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: number) => {
    const at = argv.indexOf(`--${name}`);
    if (at === -1) return fallback;
    const parsed = Number(argv[at + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} needs a positive number, got ${argv[at + 1]}`);
    return parsed;
  };
  const options = {
    rate: value('rate', 10_000),
    zipf: value('zipf', 1.2),
    users: value('users', 10_000),
    channels: value('channels', 2_000),
    channelsPerUser: value('channels-per-user', 10),
    flushDelayMs: value('flush-delay-ms', 30_000),
    warmupS: value('warmup-s', 30),
    measureS: value('measure-s', 60),
    writeBatchSize: argv.includes('--write-batch-size') ? value('write-batch-size', 0) : undefined,
    writeBehindInFlight: argv.includes('--write-behind-in-flight') ? value('write-behind-in-flight', 0) : undefined,
    json: argv.includes('--json'),
  };
  if (options.zipf === 1) throw new Error('--zipf must not be exactly 1 (the sampler inverts x^(1-s))');
  if (options.channelsPerUser > options.channels) throw new Error('--channels-per-user exceeds --channels');
  return options;
}



/** Users, channels and who is a member of what; ids above 2^63 like production snowflakes may be. */
class Layout {
  readonly userIds: string[];
  readonly channelIds: string[];
  /** Read state i is (stateUser[i], stateChannel[i]), as indexes into the id arrays. */
  readonly stateUser: Uint32Array;
  readonly stateChannel: Uint32Array;

  constructor(options: Options, random: Xorshift) {
    this.userIds = Array.from({ length: options.users }, (_, i) => (10_000_000_000_000_000_000n + BigInt(i)).toString());
    this.channelIds = Array.from({ length: options.channels }, (_, i) => (11_000_000_000_000_000_000n + BigInt(i)).toString());
    const count = options.users * options.channelsPerUser;
    this.stateUser = new Uint32Array(count);
    this.stateChannel = new Uint32Array(count);
    let i = 0;
    for (let user = 0; user < options.users; user++) {
      const joined = new Set<number>();
      while (joined.size < options.channelsPerUser) joined.add(Math.floor(random.next() * options.channels));
      for (const channel of joined) {
        this.stateUser[i] = user;
        this.stateChannel[i] = channel;
        i++;
      }
    }
  }

  get states(): number {
    return this.stateUser.length;
  }
}

/** Counts rows like CountingReadStateStore, and knows whether a store write is in flight. */
class FlushWatchingStore extends CountingReadStateStore {
  /** Milliseconds with at least one write in flight, since the last reset. */
  private flushingSince = 0;
  private flushingTotal = 0;
  private inFlight = 0;

  constructor(
    inner: ReadStateStore,
    private readonly peer: EventLoopPeer,
  ) {
    super(inner, false);
  }

  get flushing(): boolean {
    return this.inFlight > 0;
  }

  get flushingMs(): number {
    return this.flushingTotal + (this.inFlight > 0 ? performance.now() - this.flushingSince : 0);
  }

  override writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void> {
    return this.watch(super.writeStates(records, options));
  }

  override writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void> {
    return this.watch(super.writeChannels(records, options));
  }

  private async watch(write: Promise<void>): Promise<void> {
    if (this.inFlight++ === 0) {
      this.flushingSince = performance.now();
      this.peer.setFlushing(true);
    }
    try {
      await write;
    } finally {
      if (--this.inFlight === 0) {
        this.flushingTotal += performance.now() - this.flushingSince;
        this.peer.setFlushing(false);
      }
    }
  }
}

const log = (message: string) => process.stderr.write(`[store-bench] ${message}\n`);

async function inBatches<T>(items: readonly T[], size: number, work: (batch: readonly T[]) => Promise<unknown>): Promise<void> {
  for (let at = 0; at < items.length; at += size) await work(items.slice(at, at + size));
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const contactPoints = (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',');
  const keyspace = `bench_store_${Date.now().toString(36)}`;
  const random = new Xorshift(0x9e3779b9);
  const layout = new Layout(options, random);

  const cassandra = await CassandraReadStateStore.connect({ contactPoints, keyspace });
  if (!(await cassandra.isReady())) throw new Error(`Cassandra at ${contactPoints.join(',')} is not ready (npm run cassandra:start)`);
  try {
    log(`seeding ${layout.states} read states of ${options.users} users in ${options.channels} channels (keyspace ${keyspace})`);
    await inBatches(layout.channelIds, 500, (ids) => cassandra.writeChannels(ids.map((channelId) => ({ channelId, messageCount: 0, everyoneCount: 0, window: emptyWindow() }))));
    const seed: ReadStateRecord[] = [];
    for (let i = 0; i < layout.states; i++) {
      seed.push({ userId: layout.userIds[layout.stateUser[i]], channelId: layout.channelIds[layout.stateChannel[i]], lastAckedId: null, mentionBias: 0, pinnedAt: 0 });
    }
    await inBatches(seed, 5000, (records) => cassandra.writeStates(records));

    const peer = new EventLoopPeer();
    const store = new FlushWatchingStore(cassandra, peer);
    const states = new PersistentReadStates({
      store,
      capacity: layout.states * 2,
      flushDelayMs: options.flushDelayMs,
      workerId: 1,
      writeBatchSize: options.writeBatchSize,
      writeBehindInFlight: options.writeBehindInFlight,
    });
    states.start();
    log('loading every user');
    await inBatches(layout.userIds, 64, (ids) => Promise.all(ids.map((id) => states.loadUser(id))));

    const delay = new EventLoopDelayByFlushing(() => store.flushing);
    const wholePhase = monitorEventLoopDelay({ resolution: 1 });
    let flushingMsBefore = 0;
    const measurement = {
      async start() {
        await peer.start();
        flushingMsBefore = store.flushingMs;
        delay.start();
        wholePhase.enable();
      },
      stop() {
        delay.stop();
        wholePhase.disable();
        return store.flushingMs - flushingMsBefore;
      },
    };
    const result = await runStream(options, layout, states, store, random, measurement);
    const peerDelays = await peer.stop();
    const beforeStop = store.stateWriteCount + store.channelWrites;
    await states.stop();
    const shutdownWrites = store.stateWriteCount + store.channelWrites - beforeStop;

    const line = {
      updates: result.updates,
      writes: result.writes,
      writesPerUpdate: round(result.writes / result.updates, 4),
      flushDelayMs: options.flushDelayMs,
      eventLoopDelayP99Ms: p99Ms(delay.duringFlushes),
      eventLoopDelayMaxMs: maxMs(delay.duringFlushes),
      stateWrites: result.stateWrites,
      channelWrites: result.channelWrites,
      shutdownWrites,
      updatesPerSecond: Math.round(result.updates / options.measureS),
      failedUpdates: result.failed,
      droppedUpdates: result.dropped,
      readStates: layout.states,
      zipf: options.zipf,
      measuredS: options.measureS,
      flushingMs: Math.round(result.flushingMs),
      eventLoopSamplesDuringFlushes: delay.duringFlushes.count,
      betweenFlushesEventLoopDelayP99Ms: p99Ms(delay.betweenFlushes),
      betweenFlushesEventLoopDelayMaxMs: maxMs(delay.betweenFlushes),
      // The same phase through monitorEventLoopDelay, flushes or not: a check on the sampler above.
      monitorEventLoopDelayP99Ms: p99Ms(wholePhase),
      monitorEventLoopDelayMaxMs: maxMs(wholePhase),
      // The peer's view of the same moments: what the machine alone does to an idle event loop.
      peerEventLoopDelayP99Ms: peerDelays.duringFlushesP99Ms,
      peerEventLoopDelayMaxMs: peerDelays.duringFlushesMaxMs,
      peerBetweenFlushesEventLoopDelayP99Ms: peerDelays.betweenFlushesP99Ms,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(line)}\n`);
    else {
      process.stdout.write(
        `${line.updates} updates -> ${line.writes} rows written (${line.writesPerUpdate} per update) with a ${line.flushDelayMs} ms window; ` +
          `event-loop delay during flushes p99 ${line.eventLoopDelayP99Ms} ms, max ${line.eventLoopDelayMaxMs} ms\n`,
      );
    }
  } finally {
    await cassandra.close();
    await dropKeyspace(contactPoints, keyspace);
  }
}

interface StreamResult {
  updates: number;
  writes: number;
  stateWrites: number;
  channelWrites: number;
  failed: number;
  /** Updates the stream could not send on time (the process was starved or too slow). */
  dropped: number;
  /** Milliseconds of the measured phase with a store write in flight. */
  flushingMs: number;
}

/** Sends updates at options.rate for the warm-up, then counts updates and writes over the measured phase. */
async function runStream(
  options: Options,
  layout: Layout,
  states: PersistentReadStates,
  store: FlushWatchingStore,
  random: Xorshift,
  measurement: { start(): Promise<void>; stop(): number },
): Promise<StreamResult> {
  const maxPerStep = Math.max(1, Math.ceil(options.rate / 250));
  const newest: (string | undefined)[] = new Array(layout.channelIds.length);
  const lastAuthor: (string | undefined)[] = new Array(layout.channelIds.length);
  const started = performance.now();
  const warmupEnds = started + options.warmupS * 1000;
  const measureEnds = warmupEnds + options.measureS * 1000;
  let sent = 0;
  let skipped = 0;
  let failed = 0;
  let inFlight = 0;
  let measuredFrom = { updates: 0, stateWrites: 0, channelWrites: 0, skipped: 0 };
  let lastProgress = started;
  let measuring = false;

  const counted = (result: { code: number }) => {
    if (result.code !== 0) failed++;
  };
  const created = (channelIndex: number, result: CreateResult | Failure) => {
    if (result.code !== 0) failed++;
    else if (newest[channelIndex] === undefined || isNewer(result.messageId, newest[channelIndex]!)) newest[channelIndex] = result.messageId;
  };
  // As the gateway does: resident states are updated in this turn, the rest after a load.
  const update = (): void => {
    const state = zipfIndex(random, layout.states, options.zipf);
    const user = layout.userIds[layout.stateUser[state]];
    const channelIndex = layout.stateChannel[state];
    const channel = layout.channelIds[channelIndex];
    const newestId = newest[channelIndex];
    if (newestId !== undefined && random.next() < 0.7) {
      const acked = states.ackResident(user, channel, newestId);
      if (acked !== undefined) return counted(acked);
      inFlight++;
      void states.ack(user, channel, newestId).then(counted).finally(() => inFlight--);
      return;
    }
    // Half the messages are replies that mention the previous message's author.
    const previousAuthor = lastAuthor[channelIndex];
    const mentions = previousAuthor !== undefined && previousAuthor !== user && random.next() < 0.5 ? [previousAuthor] : [];
    lastAuthor[channelIndex] = user;
    const applied = states.createResident(channel, user, mentions, false);
    if (applied !== undefined) return created(channelIndex, applied);
    inFlight++;
    void states
      .createMessage(channel, user, mentions, false)
      .then((result) => created(channelIndex, result))
      .finally(() => inFlight--);
  };

  log(`streaming ${options.rate} updates/s: ${options.warmupS} s warm-up, then ${options.measureS} s measured`);
  for (;;) {
    const now = performance.now();
    if (now >= measureEnds) break;
    if (!measuring && now >= warmupEnds) {
      measuring = true;
      await measurement.start();
      measuredFrom = { updates: sent, stateWrites: store.stateWriteCount, channelWrites: store.channelWrites, skipped };
    }
    // Open loop in 1 ms steps, as updates arrive from many sockets. After a stall the stream
    // does not catch up in one burst (that burst would be the bench stalling the loop): what
    // is more than a few steps late is dropped and reported.
    let due = Math.floor(((now - started) / 1000) * options.rate) - sent - skipped;
    if (due > maxPerStep) {
      skipped += due - maxPerStep;
      due = maxPerStep;
    }
    for (let i = 0; i < due; i++) {
      sent++;
      update();
    }
    if (now - lastProgress >= 5000) {
      lastProgress = now;
      const stats = states.stats;
      log(`${Math.round((now - started) / 1000)} s: ${sent} updates (${skipped} dropped), ${store.stateWriteCount} state + ${store.channelWrites} channel rows written, ${stats.dirty} dirty, ${stats.pendingWrites} pending`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const flushingMs = measurement.stop();
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const stateWrites = store.stateWriteCount - measuredFrom.stateWrites;
  const channelWrites = store.channelWrites - measuredFrom.channelWrites;
  return {
    updates: sent - measuredFrom.updates,
    writes: stateWrites + channelWrites,
    stateWrites,
    channelWrites,
    failed,
    dropped: skipped - measuredFrom.skipped,
    flushingMs,
  };
}

/** Whether snowflake a is newer than b: decimal strings without leading zeros. */
const isNewer = (a: string, b: string) => (a.length !== b.length ? a.length > b.length : a > b);

const p99Ms = (histogram: Histogram) => round(histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0, 2);
const maxMs = (histogram: Histogram) => round(histogram.count > 0 ? histogram.max / 1e6 : 0, 2);

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

await main();
