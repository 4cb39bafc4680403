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
// blocks of a BlockPool that grow with the channel, up to the window size for messages.
// Channels only come, never go (a process sees far fewer channels than read states).

import { BlockPool } from './block-pool.js';
import { mixHash, SlotIndex, type SlotKeys } from './slot-index.js';
import { compareSnowflakes } from './snowflake.js';

/** Messages kept per channel for exact counts (PROTOCOL.md: the 1,000 newest). */
export const DEFAULT_WINDOW = 1000;

const INITIAL_CHANNELS = 1024;
/** A channel without a block yet (no message, or no mention). */
const NO_BLOCK = 0xffffffff;
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
  // Ring of the newest messages, oldest at messageFirst.
  private messageClass = new Uint8Array(INITIAL_CHANNELS);
  private messageBlock = new Uint32Array(INITIAL_CHANNELS).fill(NO_BLOCK);
  private messageFirst = new Uint32Array(INITIAL_CHANNELS);
  private messageLength = new Uint32Array(INITIAL_CHANNELS);
  // Ring of explicit mentions of window messages, in message order: the message's position
  // (1-based over the channel's life) and the mentioned user's id halves.
  private mentionClass = new Uint8Array(INITIAL_CHANNELS);
  private mentionBlock = new Uint32Array(INITIAL_CHANNELS).fill(NO_BLOCK);
  private mentionFirst = new Uint32Array(INITIAL_CHANNELS);
  private mentionLength = new Uint32Array(INITIAL_CHANNELS);

  private readonly messages: BlockPool;
  private readonly mentions = new BlockPool(4, MAX_MENTION_ROOM);

  constructor(readonly windowSize = DEFAULT_WINDOW) {
    if (!Number.isInteger(windowSize) || windowSize < 1) throw new RangeError(`window must be a positive integer, got ${windowSize}`);
    this.messages = new BlockPool(3, windowSize);
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
    return this.messageLength[c];
  }

  /** Newest message id halves; 0/0 when the channel has none. */
  newestHi(c: number): number {
    const length = this.messageLength[c];
    return length === 0 ? 0 : this.messages.words(this.messageClass[c])[this.messageAt(c, length - 1) + MESSAGE_HI];
  }

  newestLo(c: number): number {
    const length = this.messageLength[c];
    return length === 0 ? 0 : this.messages.words(this.messageClass[c])[this.messageAt(c, length - 1) + MESSAGE_LO];
  }

  /** Window message `i` (0 = oldest kept): id halves into out[0], out[1]; returns its mention_everyone flag. */
  windowMessage(c: number, i: number, out: Uint32Array): boolean {
    const words = this.messages.words(this.messageClass[c]);
    const at = this.messageAt(c, i);
    out[0] = words[at + MESSAGE_HI];
    out[1] = words[at + MESSAGE_LO];
    return words[at + MESSAGE_EVERYONE] === 1;
  }

  /** Explicit mentions kept for the window: calls `visit(position, userHi, userLo)` in message order. */
  forEachMention(c: number, visit: (position: number, userHi: number, userLo: number) => void): void {
    const words = this.mentions.words(this.mentionClass[c]);
    for (let k = 0; k < this.mentionLength[c]; k++) {
      const at = this.mentionAt(c, k);
      visit(positionOf(words, at), words[at + MENTION_USER_HI], words[at + MENTION_USER_LO]);
    }
  }

  /**
   * Appends a message, which must be newer than the newest one. Explicit mentions are added
   * one by one with `addMention` right after; a message with mention_everyone needs none.
   */
  append(c: number, idHi: number, idLo: number, mentionsEveryone: boolean): void {
    let length = this.messageLength[c];
    if (length === this.windowSize) {
      this.messageFirst[c] = (this.messageFirst[c] + 1) % this.messages.room(this.messageClass[c]);
      length--;
    } else if (this.messageBlock[c] === NO_BLOCK || length === this.messages.room(this.messageClass[c])) {
      this.growMessages(c);
    }
    const words = this.messages.words(this.messageClass[c]);
    const at = this.messageAt(c, length);
    words[at + MESSAGE_HI] = idHi;
    words[at + MESSAGE_LO] = idLo;
    words[at + MESSAGE_EVERYONE] = mentionsEveryone ? 1 : 0;
    this.messageLength[c] = length + 1;
    this.messageCounts[c]++;
    if (mentionsEveryone) this.everyoneCounts[c]++;
    this.dropMentionsBefore(c, this.messageCounts[c] - length);
  }

  /** Records that the newest message explicitly mentions (userHi, userLo). */
  addMention(c: number, userHi: number, userLo: number): void {
    if (this.mentionBlock[c] === NO_BLOCK || this.mentionLength[c] === this.mentions.room(this.mentionClass[c])) this.growMentions(c);
    const words = this.mentions.words(this.mentionClass[c]);
    const at = this.mentionAt(c, this.mentionLength[c]);
    const position = this.messageCounts[c];
    words[at + MENTION_POSITION_HI] = Math.floor(position / 4294967296);
    words[at + MENTION_POSITION_LO] = position % 4294967296;
    words[at + MENTION_USER_HI] = userHi;
    words[at + MENTION_USER_LO] = userLo;
    this.mentionLength[c]++;
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
    const length = this.messageLength[c];
    if (length === 0) return 0;
    const words = this.messages.words(this.messageClass[c]);
    let low = 0;
    let high = length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const at = this.messageAt(c, mid);
      if (compareSnowflakes(words[at + MESSAGE_HI], words[at + MESSAGE_LO], ackHi, ackLo) <= 0) low = mid + 1;
      else high = mid;
    }
    return length - low;
  }

  /** Mentions of (userHi, userLo) among the newest `newer` messages: explicit ones plus mention_everyone. */
  mentionsInNewest(c: number, newer: number, userHi: number, userLo: number): number {
    let count = 0;
    const length = this.messageLength[c];
    if (newer > 0) {
      const messageWords = this.messages.words(this.messageClass[c]);
      for (let i = length - newer; i < length; i++) count += messageWords[this.messageAt(c, i) + MESSAGE_EVERYONE];
    }
    const firstPosition = this.messageCounts[c] - newer + 1;
    const words = this.mentions.words(this.mentionClass[c]);
    for (let k = this.mentionLength[c] - 1; k >= 0; k--) {
      const at = this.mentionAt(c, k);
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

  private messageAt(c: number, i: number): number {
    const cls = this.messageClass[c];
    return this.messages.at(cls, this.messageBlock[c], (this.messageFirst[c] + i) % this.messages.room(cls));
  }

  private mentionAt(c: number, k: number): number {
    const cls = this.mentionClass[c];
    return this.mentions.at(cls, this.mentionBlock[c], (this.mentionFirst[c] + k) % this.mentions.room(cls));
  }

  /** Moves the message ring into a block of the next class (the first block for a new channel). */
  private growMessages(c: number): void {
    const block = this.messageBlock[c];
    const cls = block === NO_BLOCK ? 0 : this.messageClass[c] + 1;
    this.messageBlock[c] =
      block === NO_BLOCK
        ? this.messages.alloc(cls)
        : this.messages.moveRing(this.messageClass[c], block, this.messageFirst[c], this.messageLength[c], cls);
    this.messageClass[c] = cls;
    this.messageFirst[c] = 0;
  }

  private growMentions(c: number): void {
    const block = this.mentionBlock[c];
    const cls = block === NO_BLOCK ? 0 : this.mentionClass[c] + 1;
    if (cls === this.mentions.classes) throw new RangeError(`channel holds ${MAX_MENTION_ROOM} mentions of window messages`);
    this.mentionBlock[c] =
      block === NO_BLOCK
        ? this.mentions.alloc(cls)
        : this.mentions.moveRing(this.mentionClass[c], block, this.mentionFirst[c], this.mentionLength[c], cls);
    this.mentionClass[c] = cls;
    this.mentionFirst[c] = 0;
  }

  private dropMentionsBefore(c: number, position: number): void {
    if (this.mentionLength[c] === 0) return;
    const words = this.mentions.words(this.mentionClass[c]);
    const room = this.mentions.room(this.mentionClass[c]);
    while (this.mentionLength[c] > 0 && positionOf(words, this.mentionAt(c, 0)) < position) {
      this.mentionFirst[c] = (this.mentionFirst[c] + 1) % room;
      this.mentionLength[c]--;
    }
  }

  // Channels only come, never go, and far less often than messages: doubling the columns
  // and the index now and then costs O(channels) amortised over as many inserts.
  private growColumns(): void {
    const size = this.idHis.length * 2;
    this.idHis = grownCopy(this.idHis, new Uint32Array(size));
    this.idLos = grownCopy(this.idLos, new Uint32Array(size));
    this.messageCounts = grownCopy(this.messageCounts, new Float64Array(size));
    this.everyoneCounts = grownCopy(this.everyoneCounts, new Float64Array(size));
    this.messageClass = grownCopy(this.messageClass, new Uint8Array(size));
    this.messageBlock = grownCopy(this.messageBlock, new Uint32Array(size).fill(NO_BLOCK));
    this.messageFirst = grownCopy(this.messageFirst, new Uint32Array(size));
    this.messageLength = grownCopy(this.messageLength, new Uint32Array(size));
    this.mentionClass = grownCopy(this.mentionClass, new Uint8Array(size));
    this.mentionBlock = grownCopy(this.mentionBlock, new Uint32Array(size).fill(NO_BLOCK));
    this.mentionFirst = grownCopy(this.mentionFirst, new Uint32Array(size));
    this.mentionLength = grownCopy(this.mentionLength, new Uint32Array(size));
    this.index = new SlotIndex(size, this);
    for (let slot = 0; slot < this.count; slot++) this.index.insert(this.hashOfSlot(slot), slot);
  }
}

function grownCopy<T extends Uint32Array | Uint8Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

function positionOf(words: Uint32Array, at: number): number {
  return words[at + MENTION_POSITION_HI] * 4294967296 + words[at + MENTION_POSITION_LO];
}
