// Channel state: newest message, message count, and the window of recent messages that
// makes unread and mention counts exact without touching every member on every message.
//
// A read state stores only the id it acked. Its unread count is derived when asked: the
// number of window messages newer than that id (binary search over ids, which grow with
// time). So a message in a 100,000-member channel appends to one window and writes no
// member's entry. Channels are far fewer than read states, so each is one small object
// holding typed arrays that grow to the window size on demand.

import { mixHash, SlotIndex, type SlotKeys } from './slot-index.js';
import { compareSnowflakes } from './snowflake.js';

/** Messages kept per channel for exact counts (PROTOCOL.md: the 1,000 newest). */
export const DEFAULT_WINDOW = 1000;

const INITIAL_ROOM = 8;

export class Channel {
  /** Messages ever posted in the channel. */
  messageCount = 0;
  /** Messages ever posted with mention_everyone. */
  everyoneCount = 0;

  // Ring of the newest messages, oldest at `first`.
  private ids = new Uint32Array(INITIAL_ROOM * 2);
  private everyone = new Uint8Array(INITIAL_ROOM);
  private first = 0;
  private length = 0;

  // Ring of explicit mentions of window messages, in message order: the message's
  // position (1-based over the channel's life) and the mentioned user's id halves.
  private mentionPos = new Float64Array(INITIAL_ROOM);
  private mentionUser = new Uint32Array(INITIAL_ROOM * 2);
  private mentionFirst = 0;
  private mentionLength = 0;

  constructor(
    readonly idHi: number,
    readonly idLo: number,
    readonly windowSize: number,
  ) {}

  get hasMessages(): boolean {
    return this.messageCount > 0;
  }

  get windowLength(): number {
    return this.length;
  }

  /** Newest message id halves; 0/0 when the channel has none. */
  get newestHi(): number {
    return this.length === 0 ? 0 : this.ids[this.ringIndex(this.length - 1) * 2];
  }

  get newestLo(): number {
    return this.length === 0 ? 0 : this.ids[this.ringIndex(this.length - 1) * 2 + 1];
  }

  /** Window message `i` (0 = oldest kept): id halves into out[0], out[1]; returns its mention_everyone flag. */
  windowMessage(i: number, out: Uint32Array): boolean {
    const at = this.ringIndex(i);
    out[0] = this.ids[at * 2];
    out[1] = this.ids[at * 2 + 1];
    return this.everyone[at] === 1;
  }

  /** Explicit mentions kept for the window: calls `visit(position, userHi, userLo)` in message order. */
  forEachMention(visit: (position: number, userHi: number, userLo: number) => void): void {
    const room = this.mentionPos.length;
    for (let k = 0; k < this.mentionLength; k++) {
      const at = (this.mentionFirst + k) % room;
      visit(this.mentionPos[at], this.mentionUser[at * 2], this.mentionUser[at * 2 + 1]);
    }
  }

  /**
   * Appends a message, which must be newer than the newest one. Explicit mentions are added
   * one by one with `addMention` right after; a message with mention_everyone needs none.
   */
  append(idHi: number, idLo: number, mentionsEveryone: boolean): void {
    if (this.length === this.windowSize) {
      this.first = (this.first + 1) % this.everyone.length;
      this.length--;
    } else if (this.length === this.everyone.length) {
      this.growWindow();
    }
    const at = this.ringIndex(this.length);
    this.ids[at * 2] = idHi;
    this.ids[at * 2 + 1] = idLo;
    this.everyone[at] = mentionsEveryone ? 1 : 0;
    this.length++;
    this.messageCount++;
    if (mentionsEveryone) this.everyoneCount++;
    this.dropMentionsBefore(this.messageCount - this.length + 1);
  }

  /** Records that the newest message explicitly mentions (userHi, userLo). */
  addMention(userHi: number, userLo: number): void {
    if (this.mentionLength === this.mentionPos.length) this.growMentions();
    const at = (this.mentionFirst + this.mentionLength) % this.mentionPos.length;
    this.mentionPos[at] = this.messageCount;
    this.mentionUser[at * 2] = userHi;
    this.mentionUser[at * 2 + 1] = userLo;
    this.mentionLength++;
  }

  /**
   * Number of window messages newer than (ackHi, ackLo). This is the exact unread count
   * whenever the acked message is in the window, and the window length (1,000 when full:
   * "999+") when it is older than the whole window.
   */
  countNewerThan(ackHi: number, ackLo: number): number {
    let low = 0;
    let high = this.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const at = this.ringIndex(mid) * 2;
      if (compareSnowflakes(this.ids[at], this.ids[at + 1], ackHi, ackLo) <= 0) low = mid + 1;
      else high = mid;
    }
    return this.length - low;
  }

  /** Mentions of (userHi, userLo) among the newest `newer` messages: explicit ones plus mention_everyone. */
  mentionsInNewest(newer: number, userHi: number, userLo: number): number {
    let count = 0;
    for (let i = this.length - newer; i < this.length; i++) count += this.everyone[this.ringIndex(i)];
    const firstPosition = this.messageCount - newer + 1;
    const room = this.mentionPos.length;
    for (let k = this.mentionLength - 1; k >= 0; k--) {
      const at = (this.mentionFirst + k) % room;
      if (this.mentionPos[at] < firstPosition) break;
      if (this.mentionUser[at * 2 + 1] === userLo && this.mentionUser[at * 2] === userHi) count++;
    }
    return count;
  }

  private ringIndex(i: number): number {
    return (this.first + i) % this.everyone.length;
  }

  private growWindow(): void {
    const room = Math.min(this.windowSize, this.everyone.length * 2);
    const ids = new Uint32Array(room * 2);
    const everyone = new Uint8Array(room);
    for (let i = 0; i < this.length; i++) {
      const at = this.ringIndex(i);
      ids[i * 2] = this.ids[at * 2];
      ids[i * 2 + 1] = this.ids[at * 2 + 1];
      everyone[i] = this.everyone[at];
    }
    this.ids = ids;
    this.everyone = everyone;
    this.first = 0;
  }

  private growMentions(): void {
    const room = this.mentionPos.length * 2;
    const pos = new Float64Array(room);
    const users = new Uint32Array(room * 2);
    for (let k = 0; k < this.mentionLength; k++) {
      const at = (this.mentionFirst + k) % this.mentionPos.length;
      pos[k] = this.mentionPos[at];
      users[k * 2] = this.mentionUser[at * 2];
      users[k * 2 + 1] = this.mentionUser[at * 2 + 1];
    }
    this.mentionPos = pos;
    this.mentionUser = users;
    this.mentionFirst = 0;
  }

  private dropMentionsBefore(position: number): void {
    const room = this.mentionPos.length;
    while (this.mentionLength > 0 && this.mentionPos[this.mentionFirst] < position) {
      this.mentionFirst = (this.mentionFirst + 1) % room;
      this.mentionLength--;
    }
  }
}

/** All channels the process knows, by id. */
export class ChannelTable implements SlotKeys {
  private channels: Channel[] = [];
  private index: SlotIndex;
  private probeHi = 0;
  private probeLo = 0;

  constructor(readonly windowSize = DEFAULT_WINDOW) {
    if (!Number.isInteger(windowSize) || windowSize < 1) throw new RangeError(`window must be a positive integer, got ${windowSize}`);
    this.index = new SlotIndex(1024, this);
  }

  get size(): number {
    return this.channels.length;
  }

  find(idHi: number, idLo: number): Channel | undefined {
    this.probeHi = idHi;
    this.probeLo = idLo;
    const slot = this.index.find(mixHash(idHi, idLo, 0, 0));
    return slot === -1 ? undefined : this.channels[slot];
  }

  /** The channel (idHi, idLo), created empty if unknown. */
  findOrCreate(idHi: number, idLo: number): Channel {
    const known = this.find(idHi, idLo);
    if (known !== undefined) return known;
    if (this.channels.length === this.index.capacity) this.growIndex();
    const channel = new Channel(idHi, idLo, this.windowSize);
    this.index.insert(mixHash(idHi, idLo, 0, 0), this.channels.length);
    this.channels.push(channel);
    return channel;
  }

  hashOfSlot(slot: number): number {
    const channel = this.channels[slot];
    return mixHash(channel.idHi, channel.idLo, 0, 0);
  }

  slotMatchesProbe(slot: number): boolean {
    const channel = this.channels[slot];
    return channel.idLo === this.probeLo && channel.idHi === this.probeHi;
  }

  // Channels only come, never go, and far less often than messages: doubling the index
  // now and then costs O(channels) amortised over as many inserts.
  private growIndex(): void {
    this.index = new SlotIndex(this.index.capacity * 2, this);
    for (let slot = 0; slot < this.channels.length; slot++) this.index.insert(this.hashOfSlot(slot), slot);
  }
}
