// The churn of the GC-spike benchmark's `--working-set Wx` mode: a full table under a load
// that keeps missing, loading and evicting, as the seeds' service did ("~50 billion entry
// evictions per day").
//
// The working set is W times the table's capacity: W·N (user, channel) keys laid out as the
// preload lays out its N (channels of `channelSize` members, users spread over channels).
// All W·N rows are written to Cassandra before the measured window (through the store's
// own write path), the first N are also preloaded into the table, and the channels get one
// message each. The driver then acks that message for keys drawn uniformly from the whole
// working set, `rate` a second, in this process: (W-1)/W of them miss, load from Cassandra
// and evict the least recently used entry; an ack changes a state the first time (its
// stored ack is older), so evicted entries are often dirty and are written as they leave.

import { type ChannelTable } from '../../src/engine/channel-table.js';
import { formatSnowflake, SNOWFLAKE_EPOCH_MS } from '../../src/engine/snowflake.js';
import type { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import type { ReadStateRecord, ReadStateStore } from '../../src/store/records.js';

// Preloaded ids live far from the simulator's (which start at 2^60): users at 2^62 + u,
// channels at 2^62 + 2^40 + c.
export const PRELOAD_USER_HI = 0x40000000;
export const PRELOAD_CHANNEL_HI = 0x40000100;
/** Each preloaded user is a member of about this many channels. */
const CHANNELS_PER_USER = 20;
/**
 * Rows per store call while seeding: 20 channels of 1,000 share about 1,100 users, so the
 * store's per-user batches hold ~18 rows each (single-row requests made 24M rows take 45 min).
 */
const SEED_BATCH = 20_000;
/** Acks waiting on a load at most; past it the driver skips (and counts) keys. */
const MAX_IN_FLIGHT = 512;
const TICK_MS = 10;
/** After a stall, at most this much of the rate is sent at once (the rest is dropped, not queued). */
const MAX_CATCH_UP_MS = 50;

/** Where the i-th key of a working set of `total` keys lies: channel and user (the low halves of their ids). */
export class KeyLayout {
  readonly userCount: number;

  constructor(
    readonly total: number,
    readonly channelSize: number,
  ) {
    this.userCount = Math.max(channelSize, Math.ceil(total / CHANNELS_PER_USER));
  }

  channelOf(i: number): number {
    return Math.floor(i / this.channelSize);
  }

  /** Consecutive users (mod userCount) per channel: distinct within a channel while channelSize <= userCount. */
  userOf(i: number): number {
    return (this.channelOf(i) * 7 + (i % this.channelSize)) % this.userCount;
  }

  get channels(): number {
    return Math.ceil(this.total / this.channelSize);
  }
}

/** A plausible acked message of about a day ago, as id halves (ms since 2015 << 22). */
export function dayOldAck(nowMs: number, i: number): [number, number] {
  const ackedAt = (nowMs - SNOWFLAKE_EPOCH_MS - 86_400_000) * 2 ** 22;
  return [Math.floor(ackedAt / 2 ** 32), i >>> 0];
}

/** Gives every channel of the layout one message, newer than any preloaded ack: the one the churn acks. */
export function postChurnMessages(channels: ChannelTable, layout: KeyLayout, nowMs: number): [number, number] {
  const id = (nowMs - SNOWFLAKE_EPOCH_MS) * 2 ** 22;
  const message: [number, number] = [Math.floor(id / 2 ** 32), id % 2 ** 32];
  for (let c = 0; c < layout.channels; c++) channels.append(channels.findOrCreate(PRELOAD_CHANNEL_HI, c), message[0], message[1], false);
  return message;
}

/** Writes every key of the layout to the store, as a state with the day-old ack. */
export async function seedWorkingSet(store: ReadStateStore, layout: KeyLayout, nowMs: number, progress: (done: number) => void): Promise<void> {
  for (let from = 0; from < layout.total; from += SEED_BATCH) {
    const batch: ReadStateRecord[] = [];
    for (let i = from; i < Math.min(layout.total, from + SEED_BATCH); i++) {
      const [hi, lo] = dayOldAck(nowMs, i);
      batch.push({
        userId: formatSnowflake(PRELOAD_USER_HI, layout.userOf(i)),
        channelId: formatSnowflake(PRELOAD_CHANNEL_HI, layout.channelOf(i)),
        lastAckedId: formatSnowflake(hi, lo),
        mentionBias: 0,
        pinnedAt: 0,
      });
    }
    await store.writeStates(batch);
    progress(Math.min(layout.total, from + SEED_BATCH));
  }
}

export class ChurnDriver {
  inFlight = 0;
  skipped = 0;
  failed = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly messageId: string;
  private startedAt = 0;
  private issued = 0;

  constructor(
    private readonly readStates: PersistentReadStates,
    private readonly layout: KeyLayout,
    message: [number, number],
    private readonly rate: number,
    private readonly random: () => number = Math.random,
  ) {
    this.messageId = formatSnowflake(message[0], message[1]);
  }

  start(): void {
    this.startedAt = performance.now();
    this.issued = 0;
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    // Paced by the clock, not by the tick count: timers fire late on a busy loop, and two
    // gateways compared at one rate must really run at it. A stall is not made up in one burst.
    const due = Math.floor((this.rate * (performance.now() - this.startedAt)) / 1000) - this.issued;
    const count = Math.min(due, Math.ceil((this.rate * MAX_CATCH_UP_MS) / 1000));
    this.issued += due;
    for (let k = 0; k < count; k++) {
      // Ids are formatted per ack: keeping 24M id strings would be the very heap this benchmark measures against.
      const i = Math.floor(this.random() * this.layout.total);
      const userId = formatSnowflake(PRELOAD_USER_HI, this.layout.userOf(i));
      const channelId = formatSnowflake(PRELOAD_CHANNEL_HI, this.layout.channelOf(i));
      if (this.readStates.ackResident(userId, channelId, this.messageId) !== undefined) continue;
      if (this.inFlight >= MAX_IN_FLIGHT) {
        this.skipped++;
        continue;
      }
      this.inFlight++;
      this.readStates.ack(userId, channelId, this.messageId).then(
        (result) => {
          this.inFlight--;
          if (result.code !== 0) this.failed++;
        },
        () => {
          this.inFlight--;
          this.failed++;
        },
      );
    }
  }
}
