// The read-state table: one entry per (user, channel), held in a slab of typed arrays.
//
// Why a slab: a V8 heap of millions of small objects is traced on every major GC, which
// stalls the event loop for seconds at this size. Here every entry is a fixed-size record
// of uint32 words in one typed array preallocated to the capacity, so the GC sees two large
// buffers (records and index) and no per-entry objects, whatever the number of entries.
// Nothing allocates per operation.
//
// Besides the values, each slot sits on two intrusive doubly linked lists threaded through
// its record:
// - the LRU list (most recently linked at the head; see touch); inserting into a full
//   table evicts its tail;
// - the dirty list, in order of first unflushed change. The flush delay is one constant,
//   so that order is also the order in which entries fall due, and taking the due entries
//   walks only them: O(due), never O(table).

import { MAX_INDEX_CAPACITY, mixHash, SlotIndex, type SlotKeys } from './slot-index.js';

/** Marks the end of a list and "no slot". */
export const NONE = 0xffffffff;

/** How far from the LRU tail an insert looks for an entry it may evict. */
const EVICTION_SCAN = 64;

/** Receives the values of entries that leave the table while dirty, before their slot is reused. */
export interface DirtyEvictionSink {
  /**
   * Copy what must be written from `slot` now. Return false to refuse (say, while the store
   * is down and its retry buffer is full): the entry then stays in the table and the insert
   * looks further up the LRU list for another victim.
   */
  acceptDirtyEviction(table: ReadStateTable, slot: number): boolean;
}

/** Receives entries taken from the dirty list for a write. */
export interface FlushSink {
  flushEntry(table: ReadStateTable, slot: number): void;
}

/**
 * Where each field sits in an entry's record. Fields used together sit together: a hit
 * reads the key, the recency stamp and the values and dirty links, all in the first 44
 * bytes; the LRU links come last because most hits do not move the entry (see touch).
 */
const USER_HI = 0;
const USER_LO = 1;
const CHANNEL_HI = 2;
const CHANNEL_LO = 3;
/** The value of linkSerial when the entry was last linked at the LRU head. */
const LINKED_AT = 4;
const ACK_HI = 5;
const ACK_LO = 6;
const MENTION_BIAS = 7;
const DIRTY_SINCE = 8;
const DIRTY_PREV = 9;
const DIRTY_NEXT = 10;
const PINNED_AT = 11;
const LRU_PREV = 12;
const LRU_NEXT = 13;
/** uint32 words per entry (56 bytes). */
const STRIDE = 14;

/** V8 caps a typed array at 2^32 elements; the records of all entries share one. */
export const MAX_CAPACITY = Math.min(MAX_INDEX_CAPACITY, Math.floor(2 ** 32 / STRIDE));

export class ReadStateTable implements SlotKeys {
  // Every field of every entry, entry by entry: slot s owns words [s * STRIDE, (s + 1) * STRIDE).
  // Interleaved rather than one array per field because an update at 8M entries is bound by
  // dependent cache misses (~230 ns each on this VM): with a column per field it touched
  // ~14 cache lines, with a record per entry a hit touches its index cell and its record.
  private readonly words: Uint32Array;
  private readonly index: SlotIndex;

  private lruHead = NONE;
  private lruTail = NONE;
  /** Counts links at the LRU head (mod 2^32); the list is in descending order of LINKED_AT. */
  private linkSerial = 0;
  /** A touch of an entry linked fewer than this many links ago leaves it where it is. */
  private readonly promotionDistance: number;
  private dirtyHead = NONE;
  private dirtyTail = NONE;
  /** Slots below this mark have been handed out at least once. */
  private highWater = 0;
  /** Deleted slots, chained through their LRU_NEXT word. */
  private freeHead = NONE;

  private count = 0;
  private dirty = 0;
  /** Entries that left the table to make room, since construction. */
  evictions = 0;

  // The key being probed (see SlotKeys.slotMatchesProbe).
  private probeUserHi = 0;
  private probeUserLo = 0;
  private probeChannelHi = 0;
  private probeChannelLo = 0;

  constructor(
    readonly capacity: number,
    readonly flushDelayMs: number,
    protected readonly evictionSink: DirtyEvictionSink,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new RangeError(`capacity must be an integer from 1 to ${MAX_CAPACITY}, got ${capacity}`);
    }
    if (!(flushDelayMs >= 0 && flushDelayMs < 2 ** 31)) {
      throw new RangeError(`flush delay must be 0 to 2^31 - 1 ms, got ${flushDelayMs}`);
    }
    this.words = new Uint32Array(capacity * STRIDE);
    this.promotionDistance = Math.max(1, capacity >>> 2);
    this.index = new SlotIndex(capacity, this);
  }

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** Entries with changes not yet handed to a FlushSink or DirtyEvictionSink. */
  get dirtyCount(): number {
    return this.dirty;
  }

  /** Bytes of typed arrays the table allocated, index included. */
  get byteLength(): number {
    return this.words.byteLength + this.index.byteLength;
  }

  // ---- Fields of the entry in a slot. Their meaning belongs to ReadStates (read-states.ts);
  // the table only stores them.

  userHi(slot: number): number {
    return this.words[slot * STRIDE + USER_HI];
  }
  userLo(slot: number): number {
    return this.words[slot * STRIDE + USER_LO];
  }
  channelHi(slot: number): number {
    return this.words[slot * STRIDE + CHANNEL_HI];
  }
  channelLo(slot: number): number {
    return this.words[slot * STRIDE + CHANNEL_LO];
  }
  ackHi(slot: number): number {
    return this.words[slot * STRIDE + ACK_HI];
  }
  ackLo(slot: number): number {
    return this.words[slot * STRIDE + ACK_LO];
  }
  setAck(slot: number, hi: number, lo: number): void {
    this.words[slot * STRIDE + ACK_HI] = hi;
    this.words[slot * STRIDE + ACK_LO] = lo;
  }
  /** A signed 32-bit number (ReadStates keeps mentions as a bias that may be negative). */
  mentionBias(slot: number): number {
    return this.words[slot * STRIDE + MENTION_BIAS] | 0;
  }
  setMentionBias(slot: number, bias: number): void {
    this.words[slot * STRIDE + MENTION_BIAS] = bias;
  }
  /** Seconds since the Unix epoch of the user's last pin in the channel; 0 when none. */
  pinnedAt(slot: number): number {
    return this.words[slot * STRIDE + PINNED_AT];
  }
  setPinnedAt(slot: number, seconds: number): void {
    this.words[slot * STRIDE + PINNED_AT] = seconds;
  }

  /** The slot of (user, channel), or -1. Does not count as a use. */
  find(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    this.probeUserHi = userHi;
    this.probeUserLo = userLo;
    this.probeChannelHi = channelHi;
    this.probeChannelLo = channelLo;
    return this.index.find(mixHash(userHi, userLo, channelHi, channelLo));
  }

  /** The slot of (user, channel), or -1; a hit counts as a use (touch). */
  get(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    const slot = this.find(userHi, userLo, channelHi, channelLo);
    if (slot !== -1) this.touch(slot);
    return slot;
  }

  /**
   * Adds (user, channel), which must not be present, as the most recently used entry with
   * every value zero and clean. When the table is full the least recently used entry that
   * may go is evicted first. Returns the slot, or -1 when no entry near the LRU tail could
   * be evicted (all dirty and refused by the sink).
   */
  insert(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    let slot: number;
    if (this.freeHead !== NONE) {
      slot = this.freeHead;
      this.freeHead = this.words[slot * STRIDE + LRU_NEXT];
    } else if (this.highWater < this.capacity) {
      slot = this.highWater++;
    } else {
      slot = this.evictForInsert();
      if (slot === -1) return -1;
    }
    this.initEntry(slot, userHi, userLo, channelHi, channelLo);
    this.index.insert(mixHash(userHi, userLo, channelHi, channelLo), slot);
    this.linkLruHead(slot);
    this.count++;
    return slot;
  }

  /** Removes the entry in `slot` without handing it anywhere, dirty or not. */
  delete(slot: number): void {
    this.unlink(slot);
    this.words[slot * STRIDE + LRU_NEXT] = this.freeHead;
    this.freeHead = slot;
  }

  /**
   * Marks `slot` as used now. An entry linked within the last quarter-capacity links keeps
   * its place (memcached bumps an item only once in a while for the same reason): relinking
   * reads and writes both LRU neighbours, two more dependent cache misses on every hit, and
   * hot entries are hit all the time. The list is thus ordered by last link, not last use:
   * an entry hit while among the newest quarter can reach the tail before entries linked
   * after it. Below 8 entries the quarter is the head alone, which is exact LRU.
   */
  touch(slot: number): void {
    if (((this.linkSerial - this.words[slot * STRIDE + LINKED_AT]) >>> 0) < this.promotionDistance) return;
    this.unlinkLru(slot);
    this.linkLruHead(slot);
  }

  isDirty(slot: number): boolean {
    return this.words[slot * STRIDE + DIRTY_PREV] !== NONE || this.dirtyHead === slot;
  }

  /** Records a change at `nowMs`. The first unflushed change sets when the entry falls due; later ones ride along. */
  markDirty(slot: number, nowMs: number): void {
    if (this.isDirty(slot)) return;
    const words = this.words;
    const at = slot * STRIDE;
    words[at + DIRTY_SINCE] = nowMs;
    words[at + DIRTY_PREV] = this.dirtyTail;
    words[at + DIRTY_NEXT] = NONE;
    if (this.dirtyTail === NONE) this.dirtyHead = slot;
    else words[this.dirtyTail * STRIDE + DIRTY_NEXT] = slot;
    this.dirtyTail = slot;
    this.dirty++;
  }

  /**
   * Hands every entry that has been dirty for at least the flush delay to `sink` (at most
   * `max` of them, oldest first) and marks it clean. Returns how many were handed over.
   */
  takeDue(nowMs: number, max: number, sink: FlushSink): number {
    const now = nowMs >>> 0;
    let taken = 0;
    while (taken < max && this.dirtyHead !== NONE) {
      const slot = this.dirtyHead;
      // Modular age: correct across the 2^32 ms wrap for any age below 2^31 ms.
      if (((now - this.words[slot * STRIDE + DIRTY_SINCE]) | 0) < this.flushDelayMs) break;
      sink.flushEntry(this, slot);
      this.unlinkDirty(slot);
      taken++;
    }
    return taken;
  }

  /** Hands every dirty entry to `sink` and marks it clean (shutdown). */
  takeAllDirty(sink: FlushSink): number {
    let taken = 0;
    while (this.dirtyHead !== NONE) {
      const slot = this.dirtyHead;
      sink.flushEntry(this, slot);
      this.unlinkDirty(slot);
      taken++;
    }
    return taken;
  }

  /** Milliseconds until the oldest dirty entry falls due (0 if it already has), or -1 when none is dirty. */
  msUntilNextDue(nowMs: number): number {
    if (this.dirtyHead === NONE) return -1;
    const age = ((nowMs >>> 0) - this.words[this.dirtyHead * STRIDE + DIRTY_SINCE]) | 0;
    return Math.max(0, this.flushDelayMs - age);
  }

  /** How long the oldest dirty entry has been due: how far write-behind is behind (0 when nothing is due). */
  msOverdue(nowMs: number): number {
    if (this.dirtyHead === NONE) return 0;
    const age = ((nowMs >>> 0) - this.words[this.dirtyHead * STRIDE + DIRTY_SINCE]) | 0;
    return Math.max(0, age - this.flushDelayMs);
  }

  /** Slots from most to least recently used. */
  *slotsByRecency(): IterableIterator<number> {
    for (let slot = this.lruHead; slot !== NONE; slot = this.words[slot * STRIDE + LRU_NEXT]) yield slot;
  }

  /** Dirty slots, oldest change first. */
  *dirtySlots(): IterableIterator<number> {
    for (let slot = this.dirtyHead; slot !== NONE; slot = this.words[slot * STRIDE + DIRTY_NEXT]) yield slot;
  }

  hashOfSlot(slot: number): number {
    const at = slot * STRIDE;
    const words = this.words;
    return mixHash(words[at + USER_HI], words[at + USER_LO], words[at + CHANNEL_HI], words[at + CHANNEL_LO]);
  }

  slotMatchesProbe(slot: number): boolean {
    const at = slot * STRIDE;
    const words = this.words;
    return (
      words[at + USER_LO] === this.probeUserLo &&
      words[at + CHANNEL_LO] === this.probeChannelLo &&
      words[at + USER_HI] === this.probeUserHi &&
      words[at + CHANNEL_HI] === this.probeChannelHi
    );
  }

  /** Writes a new entry's key into `slot`, every value zero and the entry clean. */
  protected initEntry(slot: number, userHi: number, userLo: number, channelHi: number, channelLo: number): void {
    const words = this.words;
    const at = slot * STRIDE;
    words[at + USER_HI] = userHi;
    words[at + USER_LO] = userLo;
    words[at + CHANNEL_HI] = channelHi;
    words[at + CHANNEL_LO] = channelLo;
    words[at + ACK_HI] = 0;
    words[at + ACK_LO] = 0;
    words[at + MENTION_BIAS] = 0;
    words[at + PINNED_AT] = 0;
    words[at + DIRTY_PREV] = NONE;
    words[at + DIRTY_NEXT] = NONE;
  }

  private evictForInsert(): number {
    let slot = this.lruTail;
    for (let scanned = 0; slot !== NONE && scanned < EVICTION_SCAN; scanned++) {
      if (!this.isDirty(slot) || this.evictionSink.acceptDirtyEviction(this, slot)) {
        this.unlink(slot);
        this.evictions++;
        return slot;
      }
      slot = this.words[slot * STRIDE + LRU_PREV];
    }
    return -1;
  }

  /** Takes `slot` off the index and both lists. */
  private unlink(slot: number): void {
    this.index.remove(this.hashOfSlot(slot), slot);
    this.unlinkLru(slot);
    if (this.isDirty(slot)) this.unlinkDirty(slot);
    this.count--;
  }

  private linkLruHead(slot: number): void {
    const words = this.words;
    const at = slot * STRIDE;
    this.linkSerial = (this.linkSerial + 1) >>> 0;
    words[at + LINKED_AT] = this.linkSerial;
    words[at + LRU_PREV] = NONE;
    words[at + LRU_NEXT] = this.lruHead;
    if (this.lruHead === NONE) this.lruTail = slot;
    else words[this.lruHead * STRIDE + LRU_PREV] = slot;
    this.lruHead = slot;
  }

  private unlinkLru(slot: number): void {
    const words = this.words;
    const at = slot * STRIDE;
    const prev = words[at + LRU_PREV];
    const next = words[at + LRU_NEXT];
    if (prev === NONE) this.lruHead = next;
    else words[prev * STRIDE + LRU_NEXT] = next;
    if (next === NONE) this.lruTail = prev;
    else words[next * STRIDE + LRU_PREV] = prev;
  }

  protected unlinkDirty(slot: number): void {
    const words = this.words;
    const at = slot * STRIDE;
    const prev = words[at + DIRTY_PREV];
    const next = words[at + DIRTY_NEXT];
    if (prev === NONE) this.dirtyHead = next;
    else words[prev * STRIDE + DIRTY_NEXT] = next;
    if (next === NONE) this.dirtyTail = prev;
    else words[next * STRIDE + DIRTY_PREV] = prev;
    words[at + DIRTY_PREV] = NONE;
    words[at + DIRTY_NEXT] = NONE;
    this.dirty--;
  }
}
