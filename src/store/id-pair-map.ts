// A map from a (user, channel) pair of snowflakes, as id halves, to a value: what the
// read-state layer keeps per state on its way to or from the store (loads in flight,
// writes not yet confirmed).
//
// Why not a Map keyed by "user:channel": such a map fills and empties with every batch of
// loads and writes, and V8 rebuilds a Map's hash table each time it grows, shrinks or fills
// with deleted entries. A long-lived Map's tables sit in the old generation, and a table
// left behind by a rebuild still points at the values it held; until the next full GC the
// young-generation collector takes those pointers as live. Under eviction churn that kept
// nearly every queued record, load promise and key alive through one or two scavenges,
// each of which copied and promoted ~2 MB (8 ms a scavenge). Here the keys live in typed
// arrays, a value's cell is cleared when it leaves, and nothing is rebuilt while in use:
// storage only grows, doubling, when more pairs are held at once than ever before.

import { mixHash, SlotIndex, type SlotKeys } from '../engine/slot-index.js';

const INITIAL_CAPACITY = 64;

export class IdPairMap<V extends object> implements SlotKeys {
  private capacity = 0;
  /** Key words of slot s at [4s, 4s + 4): user hi, user lo, channel hi, channel lo. */
  private ids = new Uint32Array(0);
  private values: (V | undefined)[] = [];
  /** Slots that held a pair and were freed, reused first (a stack). */
  private freeSlots = new Int32Array(0);
  private freeCount = 0;
  /** Slots below this have been used at least once. */
  private used = 0;
  private index: SlotIndex;
  private probeUserHi = 0;
  private probeUserLo = 0;
  private probeChannelHi = 0;
  private probeChannelLo = 0;
  private count = 0;

  constructor(initialCapacity = INITIAL_CAPACITY) {
    this.index = this.resize(Math.max(1, initialCapacity));
  }

  get size(): number {
    return this.count;
  }

  get(userHi: number, userLo: number, channelHi: number, channelLo: number): V | undefined {
    const slot = this.find(userHi, userLo, channelHi, channelLo);
    return slot === -1 ? undefined : this.values[slot];
  }

  has(userHi: number, userLo: number, channelHi: number, channelLo: number): boolean {
    return this.find(userHi, userLo, channelHi, channelLo) !== -1;
  }

  set(userHi: number, userLo: number, channelHi: number, channelLo: number, value: V): void {
    const found = this.find(userHi, userLo, channelHi, channelLo);
    if (found !== -1) {
      this.values[found] = value;
      return;
    }
    if (this.count === this.capacity) this.index = this.resize(this.capacity * 2);
    const slot = this.freeCount > 0 ? this.freeSlots[--this.freeCount] : this.used++;
    const ids = this.ids;
    ids[4 * slot] = userHi;
    ids[4 * slot + 1] = userLo;
    ids[4 * slot + 2] = channelHi;
    ids[4 * slot + 3] = channelLo;
    this.values[slot] = value;
    this.index.insert(this.hashOfSlot(slot), slot);
    this.count++;
  }

  /** Removes the pair; false when it was not there. */
  delete(userHi: number, userLo: number, channelHi: number, channelLo: number): boolean {
    const slot = this.find(userHi, userLo, channelHi, channelLo);
    if (slot === -1) return false;
    this.index.remove(this.hashOfSlot(slot), slot);
    this.values[slot] = undefined;
    this.freeSlots[this.freeCount++] = slot;
    this.count--;
    return true;
  }

  hashOfSlot(slot: number): number {
    const ids = this.ids;
    return mixHash(ids[4 * slot], ids[4 * slot + 1], ids[4 * slot + 2], ids[4 * slot + 3]);
  }

  slotMatchesProbe(slot: number): boolean {
    const ids = this.ids;
    return (
      ids[4 * slot + 3] === this.probeChannelLo &&
      ids[4 * slot + 1] === this.probeUserLo &&
      ids[4 * slot + 2] === this.probeChannelHi &&
      ids[4 * slot] === this.probeUserHi
    );
  }

  private find(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    this.probeUserHi = userHi;
    this.probeUserLo = userLo;
    this.probeChannelHi = channelHi;
    this.probeChannelLo = channelLo;
    return this.index.find(mixHash(userHi, userLo, channelHi, channelLo));
  }

  /** Storage for `capacity` pairs, the held ones copied over; returns the rebuilt index. */
  private resize(capacity: number): SlotIndex {
    const ids = new Uint32Array(4 * capacity);
    ids.set(this.ids);
    const freeSlots = new Int32Array(capacity);
    freeSlots.set(this.freeSlots.subarray(0, this.freeCount));
    // A new array, not a longer one: growing in place could leave a copy behind as well.
    const values: (V | undefined)[] = new Array<V | undefined>(capacity).fill(undefined);
    for (let slot = 0; slot < this.used; slot++) values[slot] = this.values[slot];
    this.values.fill(undefined);
    this.ids = ids;
    this.freeSlots = freeSlots;
    this.values = values;
    this.capacity = capacity;
    const index = new SlotIndex(capacity, this);
    for (let slot = 0; slot < this.used; slot++) if (values[slot] !== undefined) index.insert(this.hashOfSlot(slot), slot);
    return index;
  }
}
