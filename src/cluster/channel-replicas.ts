// Every node's copy of the channels its users are in (docs/protocol.md "Cluster").
//
// A channel's owner (the node owning shard channel_id mod shards) gives each message its id
// and position and publishes it on `<prefix>.ch.<channel_id>`; every node holding the channel
// subscribes there and appends the messages in the owner's order, so each copy of the
// window, and every count derived from it, is the same as on a single node.
//
// A node that starts to hold a channel subscribes first, then asks the owner for the
// channel's record; messages that arrive in between wait in a buffer and those newer than
// the record are applied once it is installed, so none falls in the gap. The owner answers
// from memory (its copy is always current) or loads the record from Cassandra; after taking
// a shard over from a node that vanished, it also asks the channel's holders, whose copies
// have the messages the lost owner had not written yet.

import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { compareSnowflakes, parseSnowflake } from '../engine/snowflake.js';
import { decodeWindow, encodeWindow } from '../store/cassandra-window-blob.js';
import type { ChannelSource, CreateResult, OwnsUser, PersistentReadStates, PostedMessage } from '../store/persistent-read-states.js';
import { emptyWindow } from '../store/recent-window.js';
import type { ChannelRecord, ReadStateStore } from '../store/records.js';
import { decode, encode, isMoved, MOVED, type NodeRequests } from './node-requests.js';
import { shardOfId } from './shard-map.js';
import type { ShardOwnership } from './shard-ownership.js';

/** A channel record on the wire: the window as the store's blob. */
interface WireRecord {
  channelId: string;
  messageCount: number;
  everyoneCount: number;
  window: Uint8Array;
}

/** A posted message on the wire: [channel, message, author, mentions, mention_everyone]. */
type WireMessage = [string, string, string, string[], boolean];

/** How long holders are given to answer an owner that lost a node's shard. */
const HOLDER_QUERY_MS = 250;
/** A message not seen this long after its owner acknowledged it is taken as lost. */
const APPLY_WAIT_MS = 5000;

export interface ChannelReplicasOptions {
  nc: NatsConnection;
  prefix: string;
  shards: number;
  /** This node's read states (a function: they are built with this object as their channel source). */
  readStates: () => PersistentReadStates;
  store: ReadStateStore;
  ownership: ShardOwnership;
  requests: NodeRequests;
  ownsUser: OwnsUser;
  /** A message from another node was applied here: tell the local members. */
  applied: (result: CreateResult) => void;
  log: Logger;
}

interface Followed {
  subscription: Subscription;
  /** Messages that came before the record was installed; null once it is. */
  buffer: PostedMessage[] | null;
}

interface ApplyWaiter {
  hi: number;
  lo: number;
  /** With the message's result when this node applied it, or undefined (applied before, lost, or unknown). */
  resolve: (result: CreateResult | undefined) => void;
}

export class ChannelReplicas implements ChannelSource {
  private readonly followed = new Map<string, Followed>();
  private readonly waiters = new Map<string, ApplyWaiter[]>();
  /** Shards taken over from a node that vanished: their channels are reconciled with the holders' copies. */
  private readonly orphanedShards = new Set<number>();
  private readonly newest = new Uint32Array(2);
  readonly counters = { messagesOut: 0, messagesIn: 0, bytesOut: 0, bytesIn: 0 };

  constructor(private readonly options: ChannelReplicasOptions) {
    options.requests.handle('window', (request) => this.answerWindow(String(request.c), request.create === true));
  }

  get channelsFollowed(): number {
    return this.followed.size;
  }

  adoptOrphaned(shards: ReadonlySet<number>): void {
    for (const shard of shards) this.orphanedShards.add(shard);
  }

  // ---- ChannelSource: how PersistentReadStates loads a channel on this node

  async load(channelId: string, create: boolean): Promise<ChannelRecord | null> {
    this.follow(channelId);
    // The subscription must be in place at the server before the record is asked for.
    await this.options.nc.flush();
    const { ownership, requests } = this.options;
    const shard = shardOfId(channelId, this.options.shards);
    let record: ChannelRecord | null;
    await ownership.whenSettled(shard);
    if (ownership.serves(shard)) {
      record = await this.loadAsOwner(channelId, shard, create);
    } else {
      const answer = await requests.ask<{ record: WireRecord | null }>(() => this.ownerOf(shard), { t: 'window', c: channelId, create });
      if (isMoved(answer)) throw new Error(`channel ${channelId}: its owner did not answer`);
      record = answer.record === null ? null : fromWire(answer.record);
    }
    if (record === null) this.unfollow(channelId);
    return record;
  }

  installed(channelId: string): void {
    const followed = this.followed.get(channelId);
    if (followed === undefined || followed.buffer === null) return;
    const buffer = followed.buffer;
    followed.buffer = null;
    for (const posted of buffer) this.apply(posted);
  }

  // ---- Messages

  /** Sends a message this node (the channel's owner) sequenced to every other holder. */
  publish(posted: PostedMessage): void {
    const wire: WireMessage = [posted.channelId, posted.messageId, posted.authorId, [...posted.mentions], posted.mentionEveryone];
    const bytes = encode(wire);
    this.counters.messagesOut++;
    this.counters.bytesOut += bytes.byteLength;
    this.options.nc.publish(subjectOf(this.options.prefix, posted.channelId), bytes);
  }

  /**
   * Resolves once message `messageId` of the channel is applied here, with what applying it
   * changed here (the author's state as of that message), or with undefined after `waitMs`
   * (the message is taken as lost, or unknown) or when it was applied before this call.
   */
  whenApplied(channelId: string, messageId: string, waitMs = APPLY_WAIT_MS): Promise<CreateResult | undefined> {
    const id = new Uint32Array(2);
    if (!parseSnowflake(messageId, id, 0) || this.isApplied(channelId, id[0], id[1])) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let list = this.waiters.get(channelId);
      if (list === undefined) this.waiters.set(channelId, (list = []));
      const waiter: ApplyWaiter = {
        hi: id[0],
        lo: id[1],
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
      };
      const timer = setTimeout(() => {
        const left = this.waiters.get(channelId)?.filter((other) => other !== waiter) ?? [];
        if (left.length === 0) this.waiters.delete(channelId);
        else this.waiters.set(channelId, left);
        resolve(undefined);
      }, waitMs);
      list.push(waiter);
    });
  }

  stop(): void {
    for (const followed of this.followed.values()) followed.subscription.unsubscribe();
    this.followed.clear();
  }

  private follow(channelId: string): void {
    if (this.followed.has(channelId)) return;
    const subscription = this.options.nc.subscribe(subjectOf(this.options.prefix, channelId), {
      callback: (error, message) => {
        if (error === null) this.received(channelId, message);
      },
    });
    this.followed.set(channelId, { subscription, buffer: [] });
  }

  private unfollow(channelId: string): void {
    this.followed.get(channelId)?.subscription.unsubscribe();
    this.followed.delete(channelId);
  }

  private received(channelId: string, message: Msg): void {
    if (message.reply !== undefined && message.reply !== '') {
      // An owner reconciling after a lost node: this node's copy, if it has one.
      const record = this.options.readStates().channelRecord(channelId);
      message.respond(encode({ record: record === null ? null : toWire(record) }));
      return;
    }
    let posted: PostedMessage;
    try {
      const [c, messageId, authorId, mentions, mentionEveryone] = decode<WireMessage>(message.data);
      posted = { channelId: c, messageId, authorId, mentions, mentionEveryone };
    } catch (error) {
      return this.options.log.warn({ err: error, channel: channelId }, 'malformed channel message ignored');
    }
    this.counters.messagesIn++;
    this.counters.bytesIn += message.data.byteLength;
    const followed = this.followed.get(channelId);
    if (followed?.buffer != null) followed.buffer.push(posted);
    else this.apply(posted);
  }

  private apply(posted: PostedMessage): void {
    const result = this.options.readStates().applyPosted(posted, this.options.ownsUser);
    // undefined: not newer than the copy's newest (this node's own message, echoed back).
    if (result !== undefined) this.options.applied(result);
    const list = this.waiters.get(posted.channelId);
    if (list === undefined) return;
    const newest = this.newest;
    if (!this.options.readStates().newestMessage(posted.channelId, newest)) return;
    const waiting = list.filter((waiter) => compareSnowflakes(waiter.hi, waiter.lo, newest[0], newest[1]) > 0);
    if (waiting.length === 0) this.waiters.delete(posted.channelId);
    else this.waiters.set(posted.channelId, waiting);
    for (const waiter of list) {
      if (waiting.includes(waiter)) continue;
      const own = result !== undefined && waiter.hi === newest[0] && waiter.lo === newest[1];
      waiter.resolve(own ? result : undefined);
    }
  }

  private isApplied(channelId: string, hi: number, lo: number): boolean {
    return this.options.readStates().newestMessage(channelId, this.newest) && compareSnowflakes(hi, lo, this.newest[0], this.newest[1]) <= 0;
  }

  private async ownerOf(shard: number): Promise<number | undefined> {
    await this.options.ownership.whenSettled(shard);
    return this.options.ownership.ownerOf(shard)?.id;
  }

  /** Another node starts to hold a channel this node owns: the current record, or MOVED. */
  private async answerWindow(channelId: string, create: boolean): Promise<unknown> {
    const shard = shardOfId(channelId, this.options.shards);
    if (shard === -1) return { record: null };
    await this.options.ownership.whenSettled(shard);
    if (!this.options.ownership.serves(shard)) return MOVED;
    if (!(await this.options.readStates().ensureChannel(channelId, create))) return { record: null };
    const record = this.options.readStates().channelRecord(channelId);
    return { record: record === null ? null : toWire(record) };
  }

  /** This node owns the channel and does not hold it: the store's record, reconciled with holders after a lost node. */
  private async loadAsOwner(channelId: string, shard: number, create: boolean): Promise<ChannelRecord | null> {
    const { store } = this.options;
    let record = await store.loadChannel(channelId);
    if (this.orphanedShards.has(shard)) {
      for (const held of await this.askHolders(channelId)) {
        if (record === null || held.messageCount > record.messageCount) record = held;
      }
    }
    if (record === null && create) {
      record = { channelId, messageCount: 0, everyoneCount: 0, window: emptyWindow() };
      await store.writeChannels([record]);
    }
    return record;
  }

  private async askHolders(channelId: string): Promise<ChannelRecord[]> {
    const records: ChannelRecord[] = [];
    try {
      const replies = await this.options.nc.requestMany(subjectOf(this.options.prefix, channelId), encode({ q: 'record' }), { maxWait: HOLDER_QUERY_MS });
      for await (const reply of replies) {
        const { record } = decode<{ record: WireRecord | null }>(reply.data);
        if (record !== null) records.push(fromWire(record));
      }
    } catch (error) {
      this.options.log.debug({ err: error, channel: channelId }, 'no holder answered');
    }
    return records;
  }
}

function subjectOf(prefix: string, channelId: string): string {
  return `${prefix}.ch.${channelId}`;
}

function toWire(record: ChannelRecord): WireRecord {
  return { channelId: record.channelId, messageCount: record.messageCount, everyoneCount: record.everyoneCount, window: encodeWindow(record.window) };
}

function fromWire(wire: WireRecord): ChannelRecord {
  return { channelId: wire.channelId, messageCount: wire.messageCount, everyoneCount: wire.everyoneCount, window: decodeWindow(Buffer.from(wire.window)) };
}
