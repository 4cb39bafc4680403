// The semantics of docs/protocol.md's events, as synchronous functions of (tables, event, now).
//
// How a read state's counts are derived (the one place that defines them):
// - unread_count  = channel messages newer than the acked id (ChannelTable.countNewerThan), or
//                   every message of the channel while nothing is acked;
// - mention_count = mentionBias + the channel's everyoneCount. At an ack the bias is set to
//                   (mentions after the ack) - everyoneCount; each later explicit mention
//                   adds 1 to the bias, each later mention_everyone adds 1 to the channel's
//                   count. So an @everyone in a huge channel writes one number, not one per member.
// Membership is the existence of a read state: joining creates one, leaving deletes it.
// Neither marks anything dirty: the caller writes memberships through (PersistentReadStates).
//
// The caller makes the states an event needs resident first (store/loader); a state that
// is not in the table is, for these functions, a user who is not a member.

import { ChannelTable } from './channel-table.js';
import { type DirtyEvictionSink, ReadStateTable } from './read-state-table.js';
import { compareSnowflakes, SnowflakeGenerator } from './snowflake.js';

/** Outcome of an event, mapped to docs/protocol.md's error codes at the gateway. */
export const Outcome = {
  ok: 0,
  unknownChannel: 10003,
  unknownMessage: 10008,
  missingAccess: 50001,
  /** The table is full of dirty entries the store cannot take yet. */
  tableFull: -1,
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** A read state as the protocol shows it; ids as halves, 0/0 meaning null. */
export interface ReadStateView {
  channelHi: number;
  channelLo: number;
  lastMessageHi: number;
  lastMessageLo: number;
  ackHi: number;
  ackLo: number;
  unread: number;
  mentions: number;
}

export function emptyView(): ReadStateView {
  return { channelHi: 0, channelLo: 0, lastMessageHi: 0, lastMessageLo: 0, ackHi: 0, ackLo: 0, unread: 0, mentions: 0 };
}

export interface ReadStatesOptions {
  capacity: number;
  flushDelayMs: number;
  /** Distinguishes this process's message ids from other processes' (0..1023). */
  workerId: number;
  windowSize?: number;
  evictionSink: DirtyEvictionSink;
  /** Builds the table; benchmarks pass a variant (e.g. backed by lru-cache) to compare with. */
  createTable?: (capacity: number, flushDelayMs: number, sink: DirtyEvictionSink) => ReadStateTable;
}

export class ReadStates {
  readonly table: ReadStateTable;
  readonly channels: ChannelTable;
  private readonly ids: SnowflakeGenerator;

  /** Slots whose stored values an event changed (they are also marked dirty), valid until the next event. */
  readonly changed: number[] = [];
  /** Id halves of the message the last successful createMessage posted. */
  messageHi = 0;
  messageLo = 0;

  constructor(options: ReadStatesOptions) {
    const createTable = options.createTable ?? ((capacity, delay, sink) => new ReadStateTable(capacity, delay, sink));
    this.table = createTable(options.capacity, options.flushDelayMs, options.evictionSink);
    this.channels = new ChannelTable(options.windowSize);
    this.ids = new SnowflakeGenerator(options.workerId);
  }

  /**
   * Makes (user) a member of (channel), creating the channel on its first member. A new
   * member starts fully read; an existing one keeps its state. The state's slot, or -1 when
   * the table is full of unwritable dirty entries. The new state is not marked dirty: the
   * caller writes it through, and the write-behind window opens with its first change.
   */
  join(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    const channel = this.channels.findOrCreate(channelHi, channelLo);
    const known = this.table.get(userHi, userLo, channelHi, channelLo);
    if (known !== -1) return known;
    const slot = this.table.insert(userHi, userLo, channelHi, channelLo);
    if (slot === -1) return -1;
    this.ackNewest(slot, channel);
    return slot;
  }

  /** Removes the membership; true when there was one. */
  leave(userHi: number, userLo: number, channelHi: number, channelLo: number): boolean {
    const slot = this.table.find(userHi, userLo, channelHi, channelLo);
    if (slot === -1) return false;
    this.table.delete(slot);
    return true;
  }

  /**
   * MESSAGE_CREATE by the author in the channel. `mentions` holds `mentionCount` user ids as
   * halves (hi at 2i, lo at 2i + 1); duplicates, the author and non-members are ignored.
   * On success the new id is in messageHi/messageLo and `changed` lists the author's state
   * and every mentioned member's; every other member's unread count moved by derivation.
   */
  createMessage(
    channelHi: number,
    channelLo: number,
    authorHi: number,
    authorLo: number,
    mentions: Uint32Array,
    mentionCount: number,
    mentionsEveryone: boolean,
    nowMs: number,
  ): Outcome {
    this.changed.length = 0;
    const channel = this.channels.find(channelHi, channelLo);
    if (channel === -1) return Outcome.unknownChannel;
    const author = this.table.get(authorHi, authorLo, channelHi, channelLo);
    if (author === -1) return Outcome.missingAccess;

    this.nextMessageId(channel, nowMs);
    this.applyMessage(channel, authorHi, authorLo, mentions, mentionCount, mentionsEveryone, nowMs);
    return Outcome.ok;
  }

  /**
   * A message another node posted (docs/protocol.md "Cluster"), with its id given, appended to
   * this node's copy of the channel: the same window changes as createMessage, so counts agree
   * on every node. Only states held here change (the author's ack, mentioned members' counts);
   * the caller handles mentioned states it owns but does not hold. False when the id is not
   * newer than the channel's newest (a message already applied).
   */
  applyRemoteMessage(
    channel: number,
    messageHi: number,
    messageLo: number,
    authorHi: number,
    authorLo: number,
    mentions: Uint32Array,
    mentionCount: number,
    mentionsEveryone: boolean,
    nowMs: number,
  ): boolean {
    this.changed.length = 0;
    const channels = this.channels;
    if (channels.hasMessages(channel) && compareSnowflakes(messageHi, messageLo, channels.newestHi(channel), channels.newestLo(channel)) <= 0) return false;
    this.messageHi = messageHi;
    this.messageLo = messageLo;
    this.applyMessage(channel, authorHi, authorLo, mentions, mentionCount, mentionsEveryone, nowMs);
    return true;
  }

  /** The id (messageHi/Lo) this node would give the channel's next message, taken as used. */
  nextMessageId(channel: number, nowMs: number): void {
    this.ids.next(nowMs, this.channels.newestHi(channel), this.channels.newestLo(channel));
    this.messageHi = this.ids.hi;
    this.messageLo = this.ids.lo;
  }

  private applyMessage(channel: number, authorHi: number, authorLo: number, mentions: Uint32Array, mentionCount: number, mentionsEveryone: boolean, nowMs: number): void {
    const channelHi = this.channels.idHi(channel);
    const channelLo = this.channels.idLo(channel);
    this.channels.append(channel, this.messageHi, this.messageLo, mentionsEveryone);

    const author = this.table.find(authorHi, authorLo, channelHi, channelLo);
    if (author !== -1) {
      this.ackNewest(author, channel);
      this.table.markDirty(author, nowMs);
      this.changed.push(author);
    }

    // With @everyone every member is mentioned once through everyoneCount; explicit
    // mentions on top of it would count the message twice.
    if (mentionsEveryone) return;
    for (let i = 0; i < mentionCount; i++) {
      const hi = mentions[i * 2];
      const lo = mentions[i * 2 + 1];
      if (hi === authorHi && lo === authorLo) continue;
      if (this.seenEarlier(mentions, i, hi, lo)) continue;
      // Recorded whether or not the state is held here: on another node it may be, and every
      // copy of the window must be the same. A non-member's entry counts for nothing, since
      // any ack it makes after joining is newer than the message.
      this.channels.addMention(channel, hi, lo);
      const slot = this.table.find(hi, lo, channelHi, channelLo);
      if (slot === -1) continue;
      this.table.setMentionBias(slot, this.table.mentionBias(slot) + 1);
      this.table.markDirty(slot, nowMs);
      this.changed.push(slot);
    }
  }

  /**
   * MESSAGE_ACK: the user has read everything up to (messageHi, messageLo). Acks never move
   * backwards; an older or equal ack succeeds and changes nothing (`changed` then holds the
   * slot unmarked, so the caller can still answer with the state).
   */
  ack(userHi: number, userLo: number, channelHi: number, channelLo: number, messageHi: number, messageLo: number, nowMs: number): Outcome {
    this.changed.length = 0;
    const channel = this.channels.find(channelHi, channelLo);
    if (channel === -1) return Outcome.unknownChannel;
    const slot = this.table.get(userHi, userLo, channelHi, channelLo);
    if (slot === -1) return Outcome.missingAccess;
    if (!this.channels.hasMessages(channel) || compareSnowflakes(messageHi, messageLo, this.channels.newestHi(channel), this.channels.newestLo(channel)) > 0) {
      return Outcome.unknownMessage;
    }
    const table = this.table;
    this.changed.push(slot);
    if (compareSnowflakes(messageHi, messageLo, table.ackHi(slot), table.ackLo(slot)) <= 0) return Outcome.ok;
    const newer = this.channels.countNewerThan(channel, messageHi, messageLo);
    table.setAck(slot, messageHi, messageLo);
    table.setMentionBias(slot, this.channels.mentionsInNewest(channel, newer, userHi, userLo) - this.channels.everyoneCount(channel));
    table.markDirty(slot, nowMs);
    return Outcome.ok;
  }

  /** Fills `out` with the protocol view of the state in `slot`. */
  view(slot: number, out: ReadStateView): ReadStateView {
    const table = this.table;
    return this.viewOfValues(table.channelHi(slot), table.channelLo(slot), table.ackHi(slot), table.ackLo(slot), table.mentionBias(slot), out);
  }

  /** The protocol view of stored values that are not (or no longer) in the table. */
  viewOfValues(channelHi: number, channelLo: number, ackHi: number, ackLo: number, mentionBias: number, out: ReadStateView): ReadStateView {
    out.channelHi = channelHi;
    out.channelLo = channelLo;
    out.ackHi = ackHi;
    out.ackLo = ackLo;
    const channel = this.channels.find(channelHi, channelLo);
    if (channel === -1) {
      out.lastMessageHi = out.lastMessageLo = out.unread = out.mentions = 0;
      return out;
    }
    out.lastMessageHi = this.channels.newestHi(channel);
    out.lastMessageLo = this.channels.newestLo(channel);
    const acked = ackHi !== 0 || ackLo !== 0;
    out.unread = acked ? this.channels.countNewerThan(channel, ackHi, ackLo) : this.channels.messageCount(channel);
    out.mentions = mentionBias + this.channels.everyoneCount(channel);
    return out;
  }

  /** Acks the channel's newest message (or nothing, in an empty channel): unread 0, mentions 0. */
  private ackNewest(slot: number, channel: number): void {
    this.table.setAck(slot, this.channels.newestHi(channel), this.channels.newestLo(channel));
    this.table.setMentionBias(slot, -this.channels.everyoneCount(channel));
  }

  private seenEarlier(mentions: Uint32Array, i: number, hi: number, lo: number): boolean {
    for (let j = 0; j < i; j++) if (mentions[j * 2] === hi && mentions[j * 2 + 1] === lo) return true;
    return false;
  }
}
