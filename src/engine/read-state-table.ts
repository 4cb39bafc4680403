// The read-state table: one entry per (user, channel), held in a slab of typed arrays.
//
// Why a slab: a V8 heap of millions of small objects is traced on every major GC, which
// stalls the event loop for seconds at this size. Here every field is a column in a typed
// array preallocated to the capacity, so the GC sees a few dozen large buffers and no
// per-entry objects, whatever the number of entries. Nothing allocates per operation.
//
// Besides the values, each slot sits on two intrusive doubly linked lists threaded through
// uint32 columns:
// - the LRU list (most recent at the head); inserting into a full table evicts its tail;
// - the dirty list, in order of first unflushed change. The flush delay is one constant,
//   so that order is also the order in which entries fall due, and taking the due entries
//   walks only them: O(due), never O(table).

import { mixHash, SlotIndex, type SlotKeys } from './slot-index.js';

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

export class ReadStateTable implements SlotKeys {
  // Key columns.
  readonly userHi: Uint32Array;
  readonly userLo: Uint32Array;
  readonly channelHi: Uint32Array;
  readonly channelLo: Uint32Array;
  // Value columns. Their meaning belongs to ReadStates (read-states.ts); the table only stores them.
  readonly ackHi: Uint32Array;
  readonly ackLo: Uint32Array;
  readonly mentionBias: Int32Array;
  /** Seconds since the Unix epoch of the user's last pin in the channel; 0 when none. */
  readonly pinnedAt: Uint32Array;
  /** Time of the first unflushed change, in milliseconds modulo 2^32 (compared modularly). */
  readonly dirtySince: Uint32Array;

  private readonly lruPrev: Uint32Array;
  private readonly lruNext: Uint32Array;
  private readonly dirtyPrev: Uint32Array;
  private readonly dirtyNext: Uint32Array;
  private readonly index: SlotIndex;

  private lruHead = NONE;
  private lruTail = NONE;
  private dirtyHead = NONE;
  private dirtyTail = NONE;
  /** Slots below this mark have been handed out at least once. */
  private highWater = 0;
  /** Deleted slots, chained through lruNext. */
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
    if (!Number.isInteger(capacity) || capacity < 1 || capacity >= NONE) {
      throw new RangeError(`capacity must be an integer from 1 to 2^32 - 2, got ${capacity}`);
    }
    if (!(flushDelayMs >= 0 && flushDelayMs < 2 ** 31)) {
      throw new RangeError(`flush delay must be 0 to 2^31 - 1 ms, got ${flushDelayMs}`);
    }
    this.userHi = new Uint32Array(capacity);
    this.userLo = new Uint32Array(capacity);
    this.channelHi = new Uint32Array(capacity);
    this.channelLo = new Uint32Array(capacity);
    this.ackHi = new Uint32Array(capacity);
    this.ackLo = new Uint32Array(capacity);
    this.mentionBias = new Int32Array(capacity);
    this.pinnedAt = new Uint32Array(capacity);
    this.dirtySince = new Uint32Array(capacity);
    this.lruPrev = new Uint32Array(capacity);
    this.lruNext = new Uint32Array(capacity);
    this.dirtyPrev = new Uint32Array(capacity).fill(NONE);
    this.dirtyNext = new Uint32Array(capacity).fill(NONE);
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
    return this.capacity * 4 * 13 + this.index.byteLength;
  }

  /** The slot of (user, channel), or -1. Does not count as a use. */
  find(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    this.probeUserHi = userHi;
    this.probeUserLo = userLo;
    this.probeChannelHi = channelHi;
    this.probeChannelLo = channelLo;
    return this.index.find(mixHash(userHi, userLo, channelHi, channelLo));
  }

  /** The slot of (user, channel), or -1; a hit becomes the most recently used entry. */
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
      this.freeHead = this.lruNext[slot];
    } else if (this.highWater < this.capacity) {
      slot = this.highWater++;
    } else {
      slot = this.evictForInsert();
      if (slot === -1) return -1;
    }
    this.userHi[slot] = userHi;
    this.userLo[slot] = userLo;
    this.channelHi[slot] = channelHi;
    this.channelLo[slot] = channelLo;
    this.ackHi[slot] = 0;
    this.ackLo[slot] = 0;
    this.mentionBias[slot] = 0;
    this.pinnedAt[slot] = 0;
    this.index.insert(mixHash(userHi, userLo, channelHi, channelLo), slot);
    this.linkLruHead(slot);
    this.count++;
    return slot;
  }

  /** Removes the entry in `slot` without handing it anywhere, dirty or not. */
  delete(slot: number): void {
    this.unlink(slot);
    this.lruNext[slot] = this.freeHead;
    this.freeHead = slot;
  }

  /** Makes `slot` the most recently used entry. */
  touch(slot: number): void {
    if (this.lruHead === slot) return;
    this.unlinkLru(slot);
    this.linkLruHead(slot);
  }

  isDirty(slot: number): boolean {
    return this.dirtyPrev[slot] !== NONE || this.dirtyHead === slot;
  }

  /** Records a change at `nowMs`. The first unflushed change sets when the entry falls due; later ones ride along. */
  markDirty(slot: number, nowMs: number): void {
    if (this.isDirty(slot)) return;
    this.dirtySince[slot] = nowMs >>> 0;
    this.dirtyPrev[slot] = this.dirtyTail;
    this.dirtyNext[slot] = NONE;
    if (this.dirtyTail === NONE) this.dirtyHead = slot;
    else this.dirtyNext[this.dirtyTail] = slot;
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
      if (((now - this.dirtySince[slot]) | 0) < this.flushDelayMs) break;
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
    const age = ((nowMs >>> 0) - this.dirtySince[this.dirtyHead]) | 0;
    return Math.max(0, this.flushDelayMs - age);
  }

  /** Slots from most to least recently used. */
  *slotsByRecency(): IterableIterator<number> {
    for (let slot = this.lruHead; slot !== NONE; slot = this.lruNext[slot]) yield slot;
  }

  /** Dirty slots, oldest change first. */
  *dirtySlots(): IterableIterator<number> {
    for (let slot = this.dirtyHead; slot !== NONE; slot = this.dirtyNext[slot]) yield slot;
  }

  hashOfSlot(slot: number): number {
    return mixHash(this.userHi[slot], this.userLo[slot], this.channelHi[slot], this.channelLo[slot]);
  }

  slotMatchesProbe(slot: number): boolean {
    return (
      this.userLo[slot] === this.probeUserLo &&
      this.channelLo[slot] === this.probeChannelLo &&
      this.userHi[slot] === this.probeUserHi &&
      this.channelHi[slot] === this.probeChannelHi
    );
  }

  private evictForInsert(): number {
    let slot = this.lruTail;
    for (let scanned = 0; slot !== NONE && scanned < EVICTION_SCAN; scanned++) {
      if (!this.isDirty(slot) || this.evictionSink.acceptDirtyEviction(this, slot)) {
        this.unlink(slot);
        this.evictions++;
        return slot;
      }
      slot = this.lruPrev[slot];
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
    this.lruPrev[slot] = NONE;
    this.lruNext[slot] = this.lruHead;
    if (this.lruHead === NONE) this.lruTail = slot;
    else this.lruPrev[this.lruHead] = slot;
    this.lruHead = slot;
  }

  private unlinkLru(slot: number): void {
    const prev = this.lruPrev[slot];
    const next = this.lruNext[slot];
    if (prev === NONE) this.lruHead = next;
    else this.lruNext[prev] = next;
    if (next === NONE) this.lruTail = prev;
    else this.lruPrev[next] = prev;
  }

  protected unlinkDirty(slot: number): void {
    const prev = this.dirtyPrev[slot];
    const next = this.dirtyNext[slot];
    if (prev === NONE) this.dirtyHead = next;
    else this.dirtyNext[prev] = next;
    if (next === NONE) this.dirtyTail = prev;
    else this.dirtyPrev[next] = prev;
    this.dirtyPrev[slot] = NONE;
    this.dirtyNext[slot] = NONE;
    this.dirty--;
  }
}
