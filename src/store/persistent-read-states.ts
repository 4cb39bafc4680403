// The read states as the gateway sees them: the pure engine, made resident from the store on
// a miss and written back behind the engine's back.
//
// - Loads: one load in flight per key (user, channel, or user+channel); every request that
//   needs the key waits on that same load, so events queue behind it. After the awaits,
//   residency is checked again synchronously, because other loads may have evicted in between.
// - Writes: a changed state is written flushDelayMs after its first unflushed change (later
//   changes ride along), at once when evicted, and everything on stop(). Memberships (join,
//   leave) are written through before they are acknowledged.
// - Write-behind trickles: a few requests in flight (writeBehindInFlight) while the oldest
//   waiting write is younger than a third of flushDelayMs, the store's full concurrency once
//   it is older (and on stop). Thousands of rows fall due together every flush window; sent
//   32 at a time they burst the store node, and on a shared machine that burst is what the
//   event loop feels. The age rule bounds what kill -9 can lose: 1⅓ windows when behind.
//   Due states wait in the table, not as records, until the drain has room to send them.
// - Faults: a record handed to the store stays in `unconfirmed` until a write succeeds; a
//   failed write is retried with backoff, a newer copy supersedes an older one, and loads
//   read unconfirmed copies before the store, so nothing is lost or overwritten with older
//   data. While the store is down the unconfirmed records are bounded by maxPendingWrites:
//   past it the table refuses to evict dirty entries.

import type { Logger } from 'pino';
import { type ChannelTable } from '../engine/channel-table.js';
import { type DirtyEvictionSink, type FlushSink, type ReadStateTable } from '../engine/read-state-table.js';
import { emptyView, Outcome, ReadStates, type ReadStatesOptions, type ReadStateView } from '../engine/read-states.js';
import { formatSnowflake, parseSnowflake } from '../engine/snowflake.js';
import { IdPairMap } from './id-pair-map.js';
import { allocateWindow, MAX_WINDOW_MENTIONS, windowLength } from './recent-window.js';
import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from './records.js';
import { WriteQueue } from './write-queue.js';

/** The protocol's ReadState object. */
export interface ReadStateJson {
  channel_id: string;
  last_message_id: string | null;
  last_acked_id: string | null;
  unread_count: number;
  mention_count: number;
}

/** A request the engine refused, or 4000 when the store failed a load or write it needed. */
export interface Failure {
  code: 10003 | 10008 | 50001 | 4000;
}

export interface CreateResult {
  code: 0;
  messageId: string;
  channelId: string;
  /** The author's state and every mentioned member's; other members' unread counts moved by derivation. */
  changed: Map<string, ReadStateJson>;
  /** Every session here, the author's included, was told as the message was applied (a cluster node): only the requester's answer remains. */
  membersTold?: boolean;
}

export type AckResult = { code: 0; state: ReadStateJson } | Failure;

export interface PersistentReadStatesOptions {
  store: ReadStateStore;
  capacity: number;
  flushDelayMs: number;
  workerId: number;
  windowSize?: number;
  /** Records handed to the store and not yet confirmed, at most (memory bound during outages). */
  maxPendingWrites?: number;
  /** Records per store call. */
  writeBatchSize?: number;
  /** Store requests in flight for write-behind while it keeps up (default 2; see the header). */
  writeBehindInFlight?: number;
  clock?: () => number;
  log?: Logger;
  /** Benchmark-only: another table implementation (see ReadStatesOptions.createTable). */
  createTable?: ReadStatesOptions['createTable'];
  /** Where a channel that is not resident comes from (default: the store; a cluster node asks the channel's owner). */
  channelSource?: ChannelSource;
}

/** Where channels come from when they are not resident. */
export interface ChannelSource {
  /** The channel's current record, or null when it does not exist; `create` makes an empty one first (a join). */
  load(channelId: string, create: boolean): Promise<ChannelRecord | null>;
  /** The record just loaded is in the table (a cluster node applies the messages that came meanwhile). */
  installed(channelId: string): void;
}

/** A message as every node applies it (docs/protocol.md "Cluster"): ids as decimal text. */
export interface PostedMessage {
  channelId: string;
  messageId: string;
  authorId: string;
  mentions: readonly string[];
  mentionEveryone: boolean;
}

/** Whether this node owns the user (id halves): only its own users' states are held or loaded here. */
export type OwnsUser = (userHi: number, userLo: number) => boolean;

export interface PersistentReadStatesStats {
  size: number;
  capacity: number;
  dirty: number;
  dirtyChannels: number;
  hits: number;
  misses: number;
  evictions: number;
  flushes: number;
  writes: number;
  writeErrors: number;
  loadErrors: number;
  pendingWrites: number;
  /** How long the oldest queued write has waited for the store; 0 when none waits. */
  writeLagMs: number;
}

const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5000;
const READY_PROBE_MS = 1000;
const STOP_DEADLINE_MS = 60_000;
/** How long a "not a member" answer from the store is trusted, and how many are kept. */
const NON_MEMBER_TTL_MS = 10_000;
const MAX_NON_MEMBERS = 100_000;
/** Due entries moved to the write queue per event-loop turn. */
const FLUSH_CHUNK = 256;
/** Channels serialised and written per store call. */
const CHANNELS_PER_WRITE = 8;
const WRITE_BEHIND_IN_FLIGHT = 2;

const keyOf = (userId: string, channelId: string) => `${userId}:${channelId}`;

export class PersistentReadStates implements DirtyEvictionSink, FlushSink {
  readonly engine: ReadStates;
  private readonly store: ReadStateStore;
  private readonly clock: () => number;
  private readonly log: Logger | undefined;
  private readonly maxPendingWrites: number;
  private readonly writeBatchSize: number;
  private readonly flushDelayMs: number;
  private readonly trickle: WriteOptions;

  private readonly channelLoads = new Map<string, Promise<boolean>>();
  /** Loads of (user, channel) in flight. Pairs, not "user:channel" strings, throughout the churn path: see id-pair-map.ts. */
  private readonly stateLoads = new IdPairMap<Promise<boolean>>();
  private readonly userLoads = new Map<string, Promise<ReadStateRecord[]>>();

  /**
   * Keys the store recently said are not memberships, with when that stops being trusted.
   * Without it every mention of a non-member in every message would cost a store read.
   */
  private readonly nonMembers = new Map<string, number>();
  /** Every record handed to the store and not yet confirmed written, by (user, channel). */
  private readonly unconfirmed = new IdPairMap<ReadStateRecord>();
  /** Memberships whose delete is on its way to the store (see leave). */
  private readonly leaving = new Set<string>();
  /**
   * Explicit mentions of states this node owns but did not hold when a message came from
   * another node, by key: added to the state when its load inserts it (see applyPosted).
   */
  private readonly pendingMentions = new Map<string, number>();
  private readonly channelSource: ChannelSource;
  /** Unconfirmed records in the order they were handed over (each write sends its pair's newest copy). */
  private readonly writeQueue = new WriteQueue<ReadStateRecord>();
  /** Channel slot -> when its first unwritten change happened. */
  private readonly dirtyChannels = new Map<number, number>();
  private readonly channelQueue = new WriteQueue<number>();
  private writing = false;
  private drainScheduled = false;
  private readonly scheduledDrain = () => {
    this.drainScheduled = false;
    void this.drain();
  };
  private failures = 0;
  private retryAt = 0;

  private tickTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private probedReady = false;
  // Id halves parsed on the request path, one array per role: no allocation per request.
  private readonly userHalves = new Uint32Array(2);
  private readonly channelHalves = new Uint32Array(2);
  private readonly messageHalves = new Uint32Array(2);
  private readonly mentionHalves = new Uint32Array(2 * 1024);
  /** User, channel and ack of a record being inserted. */
  private readonly recordHalves = new Uint32Array(6);
  /** User and channel of a record the drain is sending. */
  private readonly queuedHalves = new Uint32Array(4);
  private readonly viewScratch = emptyView();

  private readonly counters = { hits: 0, misses: 0, flushes: 0, writes: 0, writeErrors: 0, loadErrors: 0 };

  constructor(options: PersistentReadStatesOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    this.log = options.log;
    this.flushDelayMs = options.flushDelayMs;
    this.maxPendingWrites = options.maxPendingWrites ?? 200_000;
    this.writeBatchSize = options.writeBatchSize ?? 500;
    this.trickle = { maxInFlight: options.writeBehindInFlight ?? WRITE_BEHIND_IN_FLIGHT };
    const store = this.store;
    this.channelSource = options.channelSource ?? { load: (channelId) => store.loadChannel(channelId), installed: () => {} };
    this.engine = new ReadStates({
      capacity: options.capacity,
      flushDelayMs: options.flushDelayMs,
      workerId: options.workerId,
      windowSize: options.windowSize,
      evictionSink: this,
      createTable: options.createTable,
    });
  }

  /** Store reachable and schema in place, as of the last probe or write. */
  get ready(): boolean {
    return this.probedReady && this.failures === 0;
  }

  get stats(): PersistentReadStatesStats {
    const table = this.engine.table;
    return {
      size: table.size,
      capacity: table.capacity,
      dirty: table.dirtyCount,
      dirtyChannels: this.dirtyChannels.size,
      evictions: table.evictions,
      pendingWrites: this.unconfirmed.size,
      writeLagMs: this.writeLagMs(),
      ...this.counters,
    };
  }

  start(): void {
    // Due entries leave at most 100 ms after falling due, in small even batches: a tick per
    // second sent a second's worth at once, and that burst of writes is what the store
    // bench saw as event-loop delay (p99 during flushes 10 ms, against 6 ms at 100 ms).
    const tickMs = Math.min(100, Math.max(5, Math.floor(this.flushDelayMs / 10)));
    this.tickTimer = setInterval(() => this.flushDue(), tickMs);
    this.tickTimer.unref();
    const probe = () => {
      this.store.isReady().then(
        (ok) => (this.probedReady = ok),
        () => (this.probedReady = false),
      );
    };
    probe();
    this.probeTimer = setInterval(probe, READY_PROBE_MS);
    this.probeTimer.unref();
  }

  /** Writes every changed state and channel, retrying until done or a deadline passes. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearInterval(this.probeTimer);
    this.engine.table.takeAllDirty(this);
    for (const channel of this.dirtyChannels.keys()) this.channelQueue.push(channel, this.clock());
    this.dirtyChannels.clear();
    await this.flushQueued();
    if (this.unconfirmed.size > 0 || this.channelQueue.length > 0) {
      this.log?.error({ pendingWrites: this.unconfirmed.size, channels: this.channelQueue.length }, 'stop: store unreachable, unwritten read states lost');
    }
  }

  // ---- Requests --------------------------------------------------------------------------

  async loadUser(userId: string): Promise<ReadStateJson[]> {
    const user = this.halves(userId, this.userHalves);
    const userHi = user[0];
    const userLo = user[1];
    const records = await this.loadUserRecords(userId);
    await Promise.all(records.map((r) => this.ensureChannel(r.channelId)));
    const views: ReadStateJson[] = [];
    for (const record of records) {
      const channel = this.halves(record.channelId, this.channelHalves);
      const channelHi = channel[0];
      const channelLo = channel[1];
      let slot = this.engine.table.find(userHi, userLo, channelHi, channelLo);
      if (slot === -1) slot = this.insertRecord(this.unconfirmed.get(userHi, userLo, channelHi, channelLo) ?? record);
      if (slot === -1) {
        // Table full of unwritable dirty entries: answer from the record itself.
        const ack = record.lastAckedId === null ? [0, 0] : this.pair(record.lastAckedId);
        this.engine.viewOfValues(channelHi, channelLo, ack[0], ack[1], record.mentionBias, this.viewScratch);
      } else {
        this.engine.view(slot, this.viewScratch);
      }
      views.push(toJson(this.viewScratch));
    }
    return views;
  }

  /**
   * MESSAGE_CREATE, applied at once when the channel, the author and every mentioned user
   * are resident (or known non-members): the common case, with no promise and no load.
   * undefined when something must be loaded first; createMessage() does that.
   */
  createResident(channelId: string, authorId: string, mentions: readonly string[], mentionEveryone: boolean): CreateResult | Failure | undefined {
    const channel = this.channelHalves;
    const author = this.userHalves;
    if (!parseSnowflake(channelId, channel, 0) || !parseSnowflake(authorId, author, 0)) return undefined;
    const channelHi = channel[0];
    const channelLo = channel[1];
    const table = this.engine.table;
    // The engine ignores mentions of states it does not hold, so they are checked here first.
    const halves = this.mentionHalves;
    let count = 0;
    if (!mentionEveryone) {
      for (const id of mentions) {
        if (count * 2 === halves.length) break;
        if (!parseSnowflake(id, halves, count * 2)) return undefined;
        if (table.find(halves[count * 2], halves[count * 2 + 1], channelHi, channelLo) !== -1) count++;
        else if (!this.isKnownNonMember(keyOf(id, channelId))) return undefined;
      }
    }
    const outcome = this.engine.createMessage(channelHi, channelLo, author[0], author[1], halves, count, mentionEveryone, this.clock());
    // Channel or author not resident: nothing was applied, a load decides.
    if (outcome === Outcome.unknownChannel || outcome === Outcome.missingAccess) return undefined;
    if (outcome !== Outcome.ok) return { code: outcome === Outcome.tableFull ? 4000 : outcome };
    this.counters.hits += 1 + count;
    const changed = new Map<string, ReadStateJson>();
    const slots = this.engine.changed;
    // The author's state comes first; its id is the one passed in.
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      changed.set(i === 0 ? authorId : formatSnowflake(table.userHi(slot), table.userLo(slot)), this.jsonOf(slot, channelId));
    }
    const channelSlot = this.engine.channels.find(channelHi, channelLo);
    if (!this.dirtyChannels.has(channelSlot)) this.dirtyChannels.set(channelSlot, this.clock());
    return { code: 0, messageId: formatSnowflake(this.engine.messageHi, this.engine.messageLo), channelId, changed };
  }

  /** MESSAGE_CREATE, loading the channel and the states it needs first (sessions try createResident before it). */
  async createMessage(channelId: string, authorId: string, mentions: readonly string[], mentionEveryone: boolean): Promise<CreateResult | Failure> {
    try {
      const unique = mentionEveryone ? [] : [...new Set(mentions)];
      // Loads can evict what earlier loads brought in: try again a few times, then give up.
      for (let attempt = 0; attempt <= 3; attempt++) {
        if (!(await this.ensureChannel(channelId))) return { code: Outcome.unknownChannel };
        const [authorMember] = await Promise.all([this.ensureState(authorId, channelId), ...unique.map((m) => this.ensureState(m, channelId))]);
        if (!authorMember) return { code: Outcome.missingAccess };
        const result = this.createResident(channelId, authorId, mentions, mentionEveryone);
        if (result !== undefined) return result;
      }
      return { code: 4000 };
    } catch (error) {
      return this.loadFailed(error);
    }
  }

  /**
   * MESSAGE_ACK, applied at once when the channel and the state are resident (no promise,
   * no load); undefined when something must be loaded first; ack() does that.
   */
  ackResident(userId: string, channelId: string, messageId: string): AckResult | undefined {
    const user = this.userHalves;
    const channel = this.channelHalves;
    const message = this.messageHalves;
    if (!parseSnowflake(userId, user, 0) || !parseSnowflake(channelId, channel, 0) || !parseSnowflake(messageId, message, 0)) return undefined;
    const outcome = this.engine.ack(user[0], user[1], channel[0], channel[1], message[0], message[1], this.clock());
    // Channel or state not resident: nothing was applied, a load decides.
    if (outcome === Outcome.unknownChannel || outcome === Outcome.missingAccess) return undefined;
    this.counters.hits++;
    if (outcome === Outcome.ok) return { code: 0, state: this.jsonOf(this.engine.changed[0], channelId) };
    return { code: outcome === Outcome.tableFull ? 4000 : outcome };
  }

  /** MESSAGE_ACK, loading the channel and the state first when needed (sessions try ackResident before it). */
  async ack(userId: string, channelId: string, messageId: string): Promise<AckResult> {
    try {
      for (let attempt = 0; attempt <= 3; attempt++) {
        // Awaited only when a load is under way: awaiting a plain `true` still costs a promise and a turn.
        const channel = this.ensureChannel(channelId);
        if (channel !== true && !(await channel)) return { code: Outcome.unknownChannel };
        const state = this.ensureState(userId, channelId);
        if (state !== true && !(await state)) return { code: Outcome.missingAccess };
        const result = this.ackResident(userId, channelId, messageId);
        if (result !== undefined) return result;
      }
      return { code: 4000 };
    } catch (error) {
      return this.loadFailed(error);
    }
  }

  /** Adds a member (creating the channel on its first member); an existing member keeps its state. */
  async join(channelId: string, userId: string): Promise<{ code: 0; state: ReadStateJson; created: boolean } | Failure> {
    try {
      const channelExisted = await this.ensureChannel(channelId, true);
      // Ask the store itself: a cached "not a member" must never make a member start over.
      this.nonMembers.delete(keyOf(userId, channelId));
      if (await this.ensureState(userId, channelId)) {
        const state = this.viewOf(userId, channelId);
        if (state !== undefined) return { code: 0, state, created: false };
      }
      // The store's "not a member" was just remembered; this join makes it stale.
      this.nonMembers.delete(keyOf(userId, channelId));
      const [userHi, userLo] = this.pair(userId);
      const [channelHi, channelLo] = this.pair(channelId);
      const slot = this.engine.join(userHi, userLo, channelHi, channelLo);
      if (slot === -1) return { code: 4000 };
      const record = this.recordOf(this.engine.table, slot);
      const channelState = this.engine.channels.find(channelHi, channelLo);
      try {
        if (!channelExisted) await this.store.writeChannels([channelRecordOf(this.engine.channels, channelState)]);
        await this.store.writeStates([record]);
      } catch (error) {
        // Not acknowledged: take the membership back so memory and store agree.
        this.engine.leave(userHi, userLo, channelHi, channelLo);
        throw error;
      }
      const state = this.viewOf(userId, channelId);
      if (state === undefined) return { code: 4000 };
      return { code: 0, state, created: true };
    } catch (error) {
      return this.loadFailed(error);
    }
  }

  /** Removes a member and its read state; removed is false when the user was not a member. */
  async leave(channelId: string, userId: string): Promise<{ code: 0; removed: boolean } | Failure> {
    try {
      if (!(await this.ensureChannel(channelId))) return { code: Outcome.unknownChannel };
      const member = await this.ensureState(userId, channelId);
      if (!member) return { code: 0, removed: false };
      const key = keyOf(userId, channelId);
      // The delete's timestamp is taken when it is issued: a write of this state issued after
      // it would win and bring the row back. So queued writes are dropped, and write-behind
      // leaves the state alone until the delete is confirmed.
      const user = this.halves(userId, this.userHalves);
      const channel = this.halves(channelId, this.channelHalves);
      this.unconfirmed.delete(user[0], user[1], channel[0], channel[1]);
      this.leaving.add(key);
      try {
        await this.store.deleteState(userId, channelId);
      } catch (error) {
        // Still a member: what changed meanwhile is written by a later flush.
        this.markResidentDirty(userId, channelId);
        throw error;
      } finally {
        this.leaving.delete(key);
      }
      this.rememberNonMember(key);
      this.halves(userId, user);
      this.halves(channelId, channel);
      this.engine.leave(user[0], user[1], channel[0], channel[1]);
      return { code: 0, removed: true };
    } catch (error) {
      return this.loadFailed(error);
    }
  }

  /** Whether the state is resident (no load, no LRU touch). */
  holds(userId: string, channelId: string): boolean {
    return this.residentSlot(userId, channelId) !== -1;
  }

  /** The state if resident (no load, no LRU touch); undefined otherwise. */
  viewOf(userId: string, channelId: string): ReadStateJson | undefined {
    const slot = this.residentSlot(userId, channelId);
    return slot === -1 ? undefined : toJson(this.engine.view(slot, this.viewScratch));
  }

  /** viewOf as numbers, into `out` (fan-out: no object or id string per member); false if not resident. */
  viewInto(userId: string, channelId: string, out: ReadStateView): boolean {
    const slot = this.residentSlot(userId, channelId);
    if (slot === -1) return false;
    this.engine.view(slot, out);
    return true;
  }

  /** The state, loaded if needed; null when the user is not a member. */
  async view(userId: string, channelId: string): Promise<ReadStateJson | null> {
    if (!(await this.ensureChannel(channelId))) return null;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!(await this.ensureState(userId, channelId))) return null;
      const state = this.viewOf(userId, channelId);
      if (state !== undefined) return state;
    }
    return null;
  }

  // ---- Cluster (src/cluster): messages sequenced by the channel's owner, applied on every node

  /**
   * The channel owner's MESSAGE_CREATE: gives the message the channel's next id and applies
   * it here. The channel must be resident; the author need not be (it may live on another
   * node, which checked its membership). undefined when the channel is not resident.
   */
  postAsOwner(channelId: string, authorId: string, mentions: readonly string[], mentionEveryone: boolean, ownsUser: OwnsUser): { posted: PostedMessage; result: CreateResult } | undefined {
    const c = this.halves(channelId, this.channelHalves);
    const channel = this.engine.channels.find(c[0], c[1]);
    if (channel === -1) return undefined;
    this.engine.nextMessageId(channel, this.clock());
    const posted: PostedMessage = { channelId, messageId: formatSnowflake(this.engine.messageHi, this.engine.messageLo), authorId, mentions, mentionEveryone };
    const result = this.applyPosted(posted, ownsUser);
    if (result === undefined) return undefined;
    if (!this.dirtyChannels.has(channel)) this.dirtyChannels.set(channel, this.clock());
    return { posted, result };
  }

  /**
   * A message sequenced by the channel's owner, applied to this node's copy of the channel
   * and to the states held here. Mentioned users this node owns but does not hold get the
   * mention when their state is loaded, and the load starts now. undefined when the channel
   * is not resident or the message is not newer than its newest (already applied).
   */
  applyPosted(posted: PostedMessage, ownsUser: OwnsUser): CreateResult | undefined {
    const c = this.halves(posted.channelId, this.channelHalves);
    const channel = this.engine.channels.find(c[0], c[1]);
    const message = this.halves(posted.messageId, this.messageHalves);
    const author = this.halves(posted.authorId, this.userHalves);
    if (channel === -1) return undefined;
    const halves = this.mentionHalves;
    let count = 0;
    if (!posted.mentionEveryone) {
      for (const id of posted.mentions) {
        if (count * 2 === halves.length) break;
        if (!parseSnowflake(id, halves, count * 2)) continue;
        count++;
      }
    }
    if (!this.engine.applyRemoteMessage(channel, message[0], message[1], author[0], author[1], halves, count, posted.mentionEveryone, this.clock())) return undefined;
    const table = this.engine.table;
    const changed = new Map<string, ReadStateJson>();
    for (const slot of this.engine.changed) changed.set(formatSnowflake(table.userHi(slot), table.userLo(slot)), this.jsonOf(slot, posted.channelId));
    for (let i = 0; i < count && !posted.mentionEveryone; i++) {
      const hi = halves[i * 2];
      const lo = halves[i * 2 + 1];
      if ((hi === author[0] && lo === author[1]) || !ownsUser(hi, lo)) continue;
      const userId = formatSnowflake(hi, lo);
      if (changed.has(userId)) continue;
      const key = keyOf(userId, posted.channelId);
      if (this.isKnownNonMember(key)) continue;
      this.pendingMentions.set(key, (this.pendingMentions.get(key) ?? 0) + 1);
      void Promise.resolve(this.ensureState(userId, posted.channelId)).catch((error: unknown) => this.loadFailed(error));
    }
    return { code: 0, messageId: posted.messageId, channelId: posted.channelId, changed };
  }

  /** The channel's newest message id halves into `out`, or false when the channel is not resident. */
  newestMessage(channelId: string, out: Uint32Array): boolean {
    const c = this.halves(channelId, this.channelHalves);
    const channel = this.engine.channels.find(c[0], c[1]);
    if (channel === -1) return false;
    out[0] = this.engine.channels.newestHi(channel);
    out[1] = this.engine.channels.newestLo(channel);
    return true;
  }

  /** The resident channel as a record (for a node that starts to hold it), or null. */
  channelRecord(channelId: string): ChannelRecord | null {
    const c = this.halves(channelId, this.channelHalves);
    const channel = this.engine.channels.find(c[0], c[1]);
    return channel === -1 ? null : channelRecordOf(this.engine.channels, channel);
  }

  /**
   * Hands over users this node stopped owning: their changed states are queued for writing
   * and every state of theirs leaves the table (the new owner loads them from the store).
   * Resolves when everything queued is written.
   */
  async releaseUsers(moved: OwnsUser): Promise<number> {
    const table = this.engine.table;
    const slots: number[] = [];
    for (const slot of table.slotsByRecency()) if (moved(table.userHi(slot), table.userLo(slot))) slots.push(slot);
    for (const slot of slots) {
      if (table.isDirty(slot)) this.flushEntry(table, slot);
      table.delete(slot);
    }
    for (const key of this.pendingMentions.keys()) {
      const user = this.halves(key.slice(0, key.indexOf(':')), this.userHalves);
      if (moved(user[0], user[1])) this.pendingMentions.delete(key);
    }
    await this.flushQueued();
    return slots.length;
  }

  /** Writes the changed channels `moved` selects now (their new owner loads them), resolving when written. */
  async releaseChannels(moved: (channelHi: number, channelLo: number) => boolean): Promise<void> {
    const channels = this.engine.channels;
    for (const channel of [...this.dirtyChannels.keys()]) {
      if (!moved(channels.idHi(channel), channels.idLo(channel))) continue;
      this.dirtyChannels.delete(channel);
      this.channelQueue.push(channel, this.clock());
    }
    await this.flushQueued();
  }

  /** Marks resident channels dirty that this node now owns after their owner vanished: its unwritten changes are here. */
  adoptChannels(gained: (channelHi: number, channelLo: number) => boolean): void {
    const channels = this.engine.channels;
    for (let channel = 0; channel < channels.size; channel++) {
      if (gained(channels.idHi(channel), channels.idLo(channel)) && !this.dirtyChannels.has(channel)) this.dirtyChannels.set(channel, this.clock());
    }
  }

  /** Resolves once everything queued for the store is written (or the stop deadline passes). */
  private async flushQueued(): Promise<void> {
    const deadline = this.clock() + STOP_DEADLINE_MS;
    while ((this.unconfirmed.size > 0 || this.channelQueue.length > 0 || this.writing) && this.clock() < deadline) {
      this.retryAt = Math.min(this.retryAt, this.clock());
      await this.drain();
      if (this.unconfirmed.size > 0 || this.channelQueue.length > 0 || this.writing) await sleep(20);
    }
  }

  // ---- Engine sinks ----------------------------------------------------------------------

  acceptDirtyEviction(table: ReadStateTable, slot: number): boolean {
    // Leaving: kept in memory rather than written, in case the delete fails.
    if (this.isLeaving(table, slot)) return false;
    if (this.unconfirmed.size >= this.maxPendingWrites) {
      this.log?.warn({ pendingWrites: this.unconfirmed.size }, 'store behind: keeping dirty read states in memory');
      return false;
    }
    this.enqueue(table, slot, this.clock());
    // One drain per turn however many entries a turn evicts (a miss storm evicts thousands).
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(this.scheduledDrain);
    }
    return true;
  }

  flushEntry(table: ReadStateTable, slot: number): void {
    // Queued as waiting since it fell due (the entry handed over is always the oldest dirty
    // one), so the trickle rule counts the time it waited in the table.
    const now = this.clock();
    if (!this.isLeaving(table, slot)) this.enqueue(table, slot, now - table.msOverdue(now));
  }

  /** Whether the state in `slot` is being deleted (see leave); no key is built while nothing is. */
  private isLeaving(table: ReadStateTable, slot: number): boolean {
    if (this.leaving.size === 0) return false;
    const userId = formatSnowflake(table.userHi(slot), table.userLo(slot));
    return this.leaving.has(keyOf(userId, formatSnowflake(table.channelHi(slot), table.channelLo(slot))));
  }

  /** Marks the state dirty again if it is in memory (a flush skipped it while a delete was pending). */
  private markResidentDirty(userId: string, channelId: string): void {
    const slot = this.residentSlot(userId, channelId);
    if (slot !== -1) this.engine.table.markDirty(slot, this.clock());
  }

  /** The state's slot if resident (no load, no LRU touch), or -1. */
  private residentSlot(userId: string, channelId: string): number {
    const user = this.halves(userId, this.userHalves);
    const channel = this.halves(channelId, this.channelHalves);
    return this.engine.table.find(user[0], user[1], channel[0], channel[1]);
  }

  // ---- Loads -----------------------------------------------------------------------------

  /** Makes the channel resident; false when the store has never seen it. */
  ensureChannel(channelId: string, create = false): Promise<boolean> | boolean {
    const c = this.halves(channelId, this.channelHalves);
    if (this.engine.channels.find(c[0], c[1]) !== -1) return true;
    let load = this.channelLoads.get(channelId);
    if (load === undefined) {
      load = this.channelSource
        .load(channelId, create)
        .then((record) => {
          if (record === null) return false;
          const halves = this.pair(channelId);
          const channel = this.engine.channels.find(halves[0], halves[1]);
          if (channel === -1) this.restoreChannel(record);
          this.channelSource.installed(channelId);
          return true;
        })
        .finally(() => this.channelLoads.delete(channelId));
      this.channelLoads.set(channelId, load);
    }
    return load;
  }

  /** Makes (user, channel) resident; false when the user is not a member. The channel must be resident. */
  ensureState(userId: string, channelId: string): Promise<boolean> | boolean {
    const user = this.halves(userId, this.userHalves);
    const channel = this.halves(channelId, this.channelHalves);
    // Hits are counted where the event is applied (the *Resident methods), misses here.
    const userHi = user[0];
    const userLo = user[1];
    const channelHi = channel[0];
    const channelLo = channel[1];
    if (this.engine.table.get(userHi, userLo, channelHi, channelLo) !== -1) return true;
    if (this.nonMembers.size > 0 && this.isKnownNonMember(keyOf(userId, channelId))) return false;
    let load = this.stateLoads.get(userHi, userLo, channelHi, channelLo);
    if (load === undefined) {
      this.counters.misses++;
      const pending = this.unconfirmed.get(userHi, userLo, channelHi, channelLo);
      const source = pending !== undefined ? Promise.resolve(pending) : this.store.loadState(userId, channelId);
      // Both outcomes forget the load in the same callback that settles it: no .finally, one promise fewer per miss.
      load = source.then(
        (record) => {
          this.forgetStateLoad(userId, channelId);
          return this.installState(userId, channelId, record);
        },
        (error: unknown) => {
          this.forgetStateLoad(userId, channelId);
          throw error;
        },
      );
      this.stateLoads.set(userHi, userLo, channelHi, channelLo, load);
    }
    return load;
  }

  private forgetStateLoad(userId: string, channelId: string): void {
    const user = this.halves(userId, this.userHalves);
    const channel = this.halves(channelId, this.channelHalves);
    this.stateLoads.delete(user[0], user[1], channel[0], channel[1]);
  }

  /** A loaded state made resident (unless a load that came first did it); false when the store says it is no membership. */
  private installState(userId: string, channelId: string, record: ReadStateRecord | null): boolean {
    if (record === null) {
      const key = keyOf(userId, channelId);
      this.rememberNonMember(key);
      this.pendingMentions.delete(key);
      return false;
    }
    const user = this.halves(userId, this.userHalves);
    const channel = this.halves(channelId, this.channelHalves);
    if (this.engine.table.find(user[0], user[1], channel[0], channel[1]) !== -1) return true;
    return this.insertRecord(this.unconfirmed.get(user[0], user[1], channel[0], channel[1]) ?? record) !== -1;
  }

  private rememberNonMember(key: string): void {
    // Oldest first in insertion order: drop the oldest when full.
    if (this.nonMembers.size >= MAX_NON_MEMBERS) this.nonMembers.delete(this.nonMembers.keys().next().value!);
    this.nonMembers.set(key, this.clock() + NON_MEMBER_TTL_MS);
  }

  private loadUserRecords(userId: string): Promise<ReadStateRecord[]> {
    let load = this.userLoads.get(userId);
    if (load === undefined) {
      load = this.store.loadUserStates(userId).finally(() => this.userLoads.delete(userId));
      this.userLoads.set(userId, load);
    }
    return load;
  }

  private loadFailed(error: unknown): Failure {
    this.counters.loadErrors++;
    this.log?.warn({ err: error }, 'store request failed');
    return { code: 4000 };
  }

  // ---- Engine application -----------------------------------------------------------------

  /** Inserts a loaded record; the slot, or -1 when the table is full of unwritable dirty entries. */
  private insertRecord(record: ReadStateRecord): number {
    // Scratch of its own, so an insert never overwrites ids a caller parsed into the shared scratch.
    const ids = this.recordHalves;
    this.halves(record.userId, ids, 0);
    this.halves(record.channelId, ids, 2);
    const table = this.engine.table;
    const slot = table.insert(ids[0], ids[1], ids[2], ids[3]);
    if (slot === -1) return -1;
    if (record.lastAckedId !== null) {
      this.halves(record.lastAckedId, ids, 4);
      table.setAck(slot, ids[4], ids[5]);
    }
    table.setMentionBias(slot, record.mentionBias);
    table.setPinnedAt(slot, record.pinnedAt);
    if (this.pendingMentions.size > 0) {
      const key = keyOf(record.userId, record.channelId);
      const pending = this.pendingMentions.get(key);
      if (pending !== undefined) {
        this.pendingMentions.delete(key);
        table.setMentionBias(slot, record.mentionBias + pending);
        table.markDirty(slot, this.clock());
      }
    }
    // Still unconfirmed in the store: keep it dirty so a later flush writes it again if needed.
    if (this.unconfirmed.has(ids[0], ids[1], ids[2], ids[3])) table.markDirty(slot, this.clock());
    return slot;
  }

  private restoreChannel(record: ChannelRecord): void {
    const halves = this.pair(record.channelId);
    const channels = this.engine.channels;
    const channel = channels.findOrCreate(halves[0], halves[1]);
    const window = record.window;
    const length = windowLength(window);
    let everyoneInWindow = 0;
    for (let i = 0; i < length; i++) everyoneInWindow += window.everyone[i];
    channels.setCounts(channel, record.messageCount - length, record.everyoneCount - everyoneInWindow);
    // A window stored by a process with a larger window size is replayed whole: the table
    // keeps the newest messages and drops the mentions of the rest, as it does while running.
    let mention = 0;
    for (let i = 0; i < length; i++) {
      channels.append(channel, window.ids[2 * i], window.ids[2 * i + 1], window.everyone[i] === 1);
      for (const end = mention + window.mentionCounts[i]; mention < end; mention++) {
        channels.addMention(channel, window.mentionedUsers[2 * mention], window.mentionedUsers[2 * mention + 1]);
      }
    }
  }

  // ---- Write-behind ----------------------------------------------------------------------

  /**
   * Moves due channels to their write queue, a bounded chunk per event-loop turn, and starts
   * the drain, which takes due states from the table as it sends them (takeDueStates).
   */
  private flushDue(): void {
    if (this.stopped) return;
    const now = this.clock();
    let channelsDue = 0;
    // Insertion order is first-change order, so the first channel not yet due ends the scan.
    for (const [channel, since] of this.dirtyChannels) {
      if (now - since < this.flushDelayMs || channelsDue === FLUSH_CHUNK) break;
      this.dirtyChannels.delete(channel);
      this.channelQueue.push(channel, now);
      channelsDue++;
    }
    void this.drain();
    if (channelsDue === FLUSH_CHUNK) setImmediate(() => this.flushDue());
  }

  /**
   * Moves up to `room` due states (at most a chunk: copying a record costs microseconds) from
   * the table to the write queue. Called by the drain when it is about to send, not as they
   * fall due: a due state waiting in the table is a few typed-array words, one waiting in the
   * queue is a record of strings on the heap. Under eviction churn the queue used to hold
   * 300-8,700 records for up to 2.3 s, long enough for young-generation collections to copy
   * and promote them.
   */
  private takeDueStates(room: number): void {
    if (this.stopped || room <= 0) return;
    const taken = this.engine.table.takeDue(this.clock(), Math.min(room, FLUSH_CHUNK), this);
    if (taken > 0) this.counters.flushes++;
  }

  /** Copies the state in `slot` into a record for the store, queued as waiting since `since`. */
  private enqueue(table: ReadStateTable, slot: number, since: number): void {
    const record = this.recordOf(table, slot);
    this.unconfirmed.set(table.userHi(slot), table.userLo(slot), table.channelHi(slot), table.channelLo(slot), record);
    this.writeQueue.push(record, since);
  }

  /** The newest unconfirmed copy of the record's (user, channel), its ids left in queuedHalves; undefined once confirmed or left. */
  private newestUnconfirmed(record: ReadStateRecord): ReadStateRecord | undefined {
    const ids = this.queuedHalves;
    this.halves(record.userId, ids, 0);
    this.halves(record.channelId, ids, 2);
    return this.unconfirmed.get(ids[0], ids[1], ids[2], ids[3]);
  }

  /** Forgets a written record, unless a newer copy replaced it meanwhile (that one stays, for its own queue entry). */
  private confirmWritten(record: ReadStateRecord): void {
    if (this.newestUnconfirmed(record) !== record) return;
    const ids = this.queuedHalves;
    this.unconfirmed.delete(ids[0], ids[1], ids[2], ids[3]);
  }

  /** Sends queued records and channels to the store, one batch at a time, backing off after failures. */
  private async drain(): Promise<void> {
    if (this.writing || this.clock() < this.retryAt) return;
    this.writing = true;
    try {
      for (;;) {
        if (this.clock() < this.retryAt) break;
        if (this.channelQueue.length > 0) {
          // Serialising a channel's window of up to 1,000 messages is the costly part: few per turn.
          const { items: channels, since } = this.channelQueue.take(CHANNELS_PER_WRITE);
          try {
            await this.store.writeChannels(
              channels.map((c) => channelRecordOf(this.engine.channels, c)),
              this.writeOptions(since),
            );
            this.succeeded(channels.length);
          } catch (error) {
            this.channelQueue.putBack(channels, since);
            this.failed(error);
          }
          continue;
        }
        this.takeDueStates(this.writeBatchSize - this.writeQueue.length);
        if (this.writeQueue.length === 0) break;
        const { items, since } = this.writeQueue.take(this.writeBatchSize);
        // Each pair's newest copy; pairs confirmed or left since they were queued are skipped.
        const batch: ReadStateRecord[] = [];
        for (const queued of items) {
          const record = this.newestUnconfirmed(queued);
          if (record !== undefined) batch.push(record);
        }
        if (batch.length === 0) continue;
        try {
          await this.store.writeStates(batch, this.writeOptions(since));
          for (const record of batch) this.confirmWritten(record);
          this.succeeded(batch.length);
        } catch (error) {
          this.writeQueue.putBack(batch, since);
          this.failed(error);
        }
      }
    } finally {
      this.writing = false;
    }
    if (!this.stopped && (this.writeQueue.length > 0 || this.channelQueue.length > 0)) {
      setTimeout(() => void this.drain(), Math.max(0, this.retryAt - this.clock())).unref();
    }
  }

  /** How long the oldest write has waited: in a queue, or in the table since it fell due. */
  private writeLagMs(): number {
    const now = this.clock();
    const oldest = Math.min(this.writeQueue.oldestQueuedAt ?? now, this.channelQueue.oldestQueuedAt ?? now);
    return Math.max(now - oldest, this.engine.table.msOverdue(now));
  }

  /** Trickle while the oldest write waiting (the batch's, queued at `since`, or a due state's) is young; full speed once behind or stopping. */
  private writeOptions(since: number): WriteOptions | undefined {
    if (this.stopped) return undefined;
    const now = this.clock();
    return Math.max(now - since, this.engine.table.msOverdue(now)) > this.flushDelayMs / 3 ? undefined : this.trickle;
  }

  private succeeded(records: number): void {
    this.counters.writes += records;
    if (this.failures > 0) this.log?.info({ after: this.failures }, 'store writes recovered');
    this.failures = 0;
    this.retryAt = 0;
  }

  private failed(error: unknown): void {
    this.counters.writeErrors++;
    this.failures++;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.failures - 1, 10));
    this.retryAt = this.clock() + backoff;
    this.log?.warn({ err: error, pendingWrites: this.unconfirmed.size, retryInMs: backoff }, 'store write failed; will retry');
  }

  // ---- Conversions -----------------------------------------------------------------------

  private recordOf(table: ReadStateTable, slot: number): ReadStateRecord {
    const acked = table.ackHi(slot) !== 0 || table.ackLo(slot) !== 0;
    return {
      userId: formatSnowflake(table.userHi(slot), table.userLo(slot)),
      channelId: formatSnowflake(table.channelHi(slot), table.channelLo(slot)),
      lastAckedId: acked ? formatSnowflake(table.ackHi(slot), table.ackLo(slot)) : null,
      mentionBias: table.mentionBias(slot),
      pinnedAt: table.pinnedAt(slot),
    };
  }

  /** Parses an id into `into` from `at`; ids reach here validated by the codec. */
  private halves(id: string, into: Uint32Array, at = 0): Uint32Array {
    if (!parseSnowflake(id, into, at)) throw new Error(`malformed snowflake ${id}`);
    return into;
  }

  /** The protocol object of the state in `slot`, whose channel id the caller already has as a string. */
  private jsonOf(slot: number, channelId: string): ReadStateJson {
    return toJson(this.engine.view(slot, this.viewScratch), channelId);
  }

  /** Whether the store said recently that `key` is not a membership; forgets the answer once stale. */
  private isKnownNonMember(key: string): boolean {
    const trustedUntil = this.nonMembers.get(key);
    if (trustedUntil === undefined) return false;
    if (trustedUntil > this.clock()) return true;
    this.nonMembers.delete(key);
    return false;
  }

  private pair(id: string): [number, number] {
    const out = new Uint32Array(2);
    if (!parseSnowflake(id, out, 0)) throw new Error(`malformed snowflake ${id}`);
    return [out[0], out[1]];
  }
}

function toJson(view: ReadStateView, channelId = formatSnowflake(view.channelHi, view.channelLo)): ReadStateJson {
  return {
    channel_id: channelId,
    last_message_id: view.lastMessageHi === 0 && view.lastMessageLo === 0 ? null : formatSnowflake(view.lastMessageHi, view.lastMessageLo),
    last_acked_id: view.ackHi === 0 && view.ackLo === 0 ? null : formatSnowflake(view.ackHi, view.ackLo),
    unread_count: view.unread,
    mention_count: view.mentions,
  };
}

function channelRecordOf(channels: ChannelTable, channel: number): ChannelRecord {
  const length = channels.windowLength(channel);
  const messageCount = channels.messageCount(channel);
  const window = allocateWindow(length, channels.windowMentionCount(channel));
  const id = new Uint32Array(2);
  for (let i = 0; i < length; i++) {
    window.everyone[i] = channels.windowMessage(channel, i, id) ? 1 : 0;
    window.ids[2 * i] = id[0];
    window.ids[2 * i + 1] = id[1];
  }
  const firstPosition = messageCount - length + 1;
  let mention = 0;
  channels.forEachMention(channel, (position, userHi, userLo) => {
    const i = position - firstPosition;
    if (window.mentionCounts[i] === MAX_WINDOW_MENTIONS) throw new RangeError(`message ${i} of a window mentions more than ${MAX_WINDOW_MENTIONS} users`);
    window.mentionCounts[i]++;
    window.mentionedUsers[2 * mention] = userHi;
    window.mentionedUsers[2 * mention + 1] = userLo;
    mention++;
  });
  const channelId = formatSnowflake(channels.idHi(channel), channels.idLo(channel));
  return { channelId, messageCount, everyoneCount: channels.everyoneCount(channel), window };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
