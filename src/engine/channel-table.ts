// Channel state: newest message, message count, and the window of recent messages that
// makes unread and mention counts exact without touching every member on every message.
//
// A read state stores only the id it acked. Its unread count is derived when asked: the
// number of window messages newer than that id (binary search over ids, which grow with
// time). So a message in a 100,000-member channel appends to one window and writes no
// member's entry.
//
// Like the read-state table, this holds no heap object per channel: a channel is a slot in
// typed-array columns, and its two rings (recent messages; explicit mentions of them) are
// BlockRings that grow with the channel, up to the window size for messages.
// Channels only come, never go (a process sees far fewer channels than read states).

import { BlockRings, grownCopy } from './block-rings.js';
import { mixHash, SlotIndex, type SlotKeys } from './slot-index.js';
import { compareSnowflakes } from './snowflake.js';

/** Messages kept per channel for exact counts (docs/protocol.md: the 1,000 newest). */
export const DEFAULT_WINDOW = 1000;

const INITIAL_CHANNELS = 1024;
/** Mentions are bounded by the window's messages times the mentions a message may carry. */
const MAX_MENTION_ROOM = 2 ** 24;

// Words of an element of each ring.
const MESSAGE_HI = 0;
const MESSAGE_LO = 1;
const MESSAGE_EVERYONE = 2;
const MENTION_POSITION_HI = 0;
const MENTION_POSITION_LO = 1;
const MENTION_USER_HI = 2;
const MENTION_USER_LO = 3;

/** All channels the process knows, by id; a channel is its slot number. */
export class ChannelTable implements SlotKeys {
  private count = 0;
  private index: SlotIndex;
  private probeHi = 0;
  private probeLo = 0;

  // Per channel slot.
  private idHis = new Uint32Array(INITIAL_CHANNELS);
  private idLos = new Uint32Array(INITIAL_CHANNELS);
  /** Messages ever posted; a double: counts pass 2^32 in a busy channel's life. */
  private messageCounts = new Float64Array(INITIAL_CHANNELS);
  /** Messages ever posted with mention_everyone. */
  private everyoneCounts = new Float64Array(INITIAL_CHANNELS);
  /** Per channel, the newest messages, oldest first. */
  private readonly messages: BlockRings;
  /**
   * Per channel, explicit mentions of window messages, in message order: the message's
   * position (1-based over the channel's life) and the mentioned user's id halves.
   */
  private readonly mentions = new BlockRings(4, MAX_MENTION_ROOM, INITIAL_CHANNELS);

  constructor(readonly windowSize = DEFAULT_WINDOW) {
    if (!Number.isInteger(windowSize) || windowSize < 1) throw new RangeError(`window must be a positive integer, got ${windowSize}`);
    this.messages = new BlockRings(3, windowSize, INITIAL_CHANNELS);
    this.index = new SlotIndex(INITIAL_CHANNELS, this);
  }

  get size(): number {
    return this.count;
  }

  /** The channel's slot, or -1. */
  find(idHi: number, idLo: number): number {
    this.probeHi = idHi;
    this.probeLo = idLo;
    return this.index.find(mixHash(idHi, idLo, 0, 0));
  }

  /** The slot of channel (idHi, idLo), created empty if unknown. */
  findOrCreate(idHi: number, idLo: number): number {
    const known = this.find(idHi, idLo);
    if (known !== -1) return known;
    if (this.count === this.idHis.length) this.growColumns();
    const c = this.count++;
    this.idHis[c] = idHi;
    this.idLos[c] = idLo;
    this.index.insert(mixHash(idHi, idLo, 0, 0), c);
    return c;
  }

  idHi(c: number): number {
    return this.idHis[c];
  }

  idLo(c: number): number {
    return this.idLos[c];
  }

  /** Messages ever posted in the channel. */
  messageCount(c: number): number {
    return this.messageCounts[c];
  }

  /** Messages ever posted with mention_everyone. */
  everyoneCount(c: number): number {
    return this.everyoneCounts[c];
  }

  hasMessages(c: number): boolean {
    return this.messageCounts[c] > 0;
  }

  windowLength(c: number): number {
    return this.messages.length(c);
  }

  /** Newest message id halves; 0/0 when the channel has none. */
  newestHi(c: number): number {
    const length = this.messages.length(c);
    return length === 0 ? 0 : this.messages.words(c)[this.messages.at(c, length - 1) + MESSAGE_HI];
  }

  newestLo(c: number): number {
    const length = this.messages.length(c);
    return length === 0 ? 0 : this.messages.words(c)[this.messages.at(c, length - 1) + MESSAGE_LO];
  }

  /** Window message `i` (0 = oldest kept): id halves into out[0], out[1]; returns its mention_everyone flag. */
  windowMessage(c: number, i: number, out: Uint32Array): boolean {
    const words = this.messages.words(c);
    const at = this.messages.at(c, i);
    out[0] = words[at + MESSAGE_HI];
    out[1] = words[at + MESSAGE_LO];
    return words[at + MESSAGE_EVERYONE] === 1;
  }

  /** Explicit mentions kept for the window's messages. */
  windowMentionCount(c: number): number {
    return this.mentions.length(c);
  }

  /** Explicit mentions kept for the window: calls `visit(position, userHi, userLo)` in message order. */
  forEachMention(c: number, visit: (position: number, userHi: number, userLo: number) => void): void {
    const words = this.mentions.words(c);
    for (let k = 0; k < this.mentions.length(c); k++) {
      const at = this.mentions.at(c, k);
      visit(positionOf(words, at), words[at + MENTION_USER_HI], words[at + MENTION_USER_LO]);
    }
  }

  /**
   * Appends a message, which must be newer than the newest one. Explicit mentions are added
   * one by one with `addMention` right after; a message with mention_everyone needs none.
   */
  append(c: number, idHi: number, idLo: number, mentionsEveryone: boolean): void {
    if (this.messages.length(c) === this.windowSize) this.messages.dropFirst(c);
    const at = this.messages.push(c);
    const words = this.messages.words(c);
    words[at + MESSAGE_HI] = idHi;
    words[at + MESSAGE_LO] = idLo;
    words[at + MESSAGE_EVERYONE] = mentionsEveryone ? 1 : 0;
    this.messageCounts[c]++;
    if (mentionsEveryone) this.everyoneCounts[c]++;
    this.dropMentionsBefore(c, this.messageCounts[c] - this.messages.length(c) + 1);
  }

  /** Records that the newest message explicitly mentions (userHi, userLo). */
  addMention(c: number, userHi: number, userLo: number): void {
    const at = this.mentions.push(c);
    const words = this.mentions.words(c);
    const position = this.messageCounts[c];
    words[at + MENTION_POSITION_HI] = Math.floor(position / 4294967296);
    words[at + MENTION_POSITION_LO] = position % 4294967296;
    words[at + MENTION_USER_HI] = userHi;
    words[at + MENTION_USER_LO] = userLo;
  }

  /** Sets the counts of messages older than the window (restoring a channel from the store, before its window). */
  setCounts(c: number, messageCount: number, everyoneCount: number): void {
    this.messageCounts[c] = messageCount;
    this.everyoneCounts[c] = everyoneCount;
  }

  /**
   * Number of window messages newer than (ackHi, ackLo). This is the exact unread count
   * whenever the acked message is in the window, and the window length (1,000 when full:
   * "999+") when it is older than the whole window.
   */
  countNewerThan(c: number, ackHi: number, ackLo: number): number {
    const length = this.messages.length(c);
    if (length === 0) return 0;
    const words = this.messages.words(c);
    let low = 0;
    let high = length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const at = this.messages.at(c, mid);
      if (compareSnowflakes(words[at + MESSAGE_HI], words[at + MESSAGE_LO], ackHi, ackLo) <= 0) low = mid + 1;
      else high = mid;
    }
    return length - low;
  }

  /** Mentions of (userHi, userLo) among the newest `newer` messages: explicit ones plus mention_everyone. */
  mentionsInNewest(c: number, newer: number, userHi: number, userLo: number): number {
    let count = 0;
    const length = this.messages.length(c);
    if (newer > 0) {
      const messageWords = this.messages.words(c);
      for (let i = length - newer; i < length; i++) count += messageWords[this.messages.at(c, i) + MESSAGE_EVERYONE];
    }
    const firstPosition = this.messageCounts[c] - newer + 1;
    const words = this.mentions.words(c);
    for (let k = this.mentions.length(c) - 1; k >= 0; k--) {
      const at = this.mentions.at(c, k);
      if (positionOf(words, at) < firstPosition) break;
      if (words[at + MENTION_USER_LO] === userLo && words[at + MENTION_USER_HI] === userHi) count++;
    }
    return count;
  }

  hashOfSlot(slot: number): number {
    return mixHash(this.idHis[slot], this.idLos[slot], 0, 0);
  }

  slotMatchesProbe(slot: number): boolean {
    return this.idLos[slot] === this.probeLo && this.idHis[slot] === this.probeHi;
  }

  private dropMentionsBefore(c: number, position: number): void {
    const words = this.mentions.words(c);
    while (this.mentions.length(c) > 0 && positionOf(words, this.mentions.at(c, 0)) < position) this.mentions.dropFirst(c);
  }

  // Channels only come, never go, and far less often than messages: doubling the columns
  // and the index now and then costs O(channels) amortised over as many inserts.
  private growColumns(): void {
    const size = this.idHis.length * 2;
    this.idHis = grownCopy(this.idHis, new Uint32Array(size));
    this.idLos = grownCopy(this.idLos, new Uint32Array(size));
    this.messageCounts = grownCopy(this.messageCounts, new Float64Array(size));
    this.everyoneCounts = grownCopy(this.everyoneCounts, new Float64Array(size));
    this.messages.resize(size);
    this.mentions.resize(size);
    this.index = new SlotIndex(size, this);
    for (let slot = 0; slot < this.count; slot++) this.index.insert(this.hashOfSlot(slot), slot);
  }
}

function positionOf(words: Uint32Array, at: number): number {
  return words[at + MENTION_POSITION_HI] * 4294967296 + words[at + MENTION_POSITION_LO];
}
