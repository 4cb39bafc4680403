// Benchmark-only: the read-state table as a Node developer would write it with lru-cache,
// to run the gateway against the engine's slab (test/bench/gc-spikes.ts).
//
// Lookup, recency and eviction go through an LRUCache keyed by "userId:channelId" (decimal
// strings, as ids arrive on the wire), holding one object per read state with its ids and
// values. That is the heap the slab exists to avoid: per entry a key string, two id
// strings, an acked-id string and an object, plus lru-cache's Map entry and list cells,
// all traced by every major GC.
//
// The engine (read-states.ts) reads and writes a state's values through the table's typed
// records by slot, an API this subclass cannot change. So each entry object also carries
// its slot, and its value fields are a copy of the slab record, refreshed on every markDirty
// (the engine marks every state it changes) and by refreshEntry after a bulk preload. The
// dirty list (write-behind order) is the base class's, unchanged. What the base class
// allocates for its own index and LRU links stays allocated and unused here (typed arrays:
// RSS, not GC work).

import { LRUCache } from 'lru-cache';
import { type DirtyEvictionSink, ReadStateTable } from '../../src/engine/read-state-table.js';
import { formatSnowflake } from '../../src/engine/snowflake.js';

/** The tables a benchmark can run the gateway with: the engine's slab, or this one. */
export const TABLE_IMPLS = ['engine', 'lru-cache'] as const;
export type TableImpl = (typeof TABLE_IMPLS)[number];

/** How far from the LRU tail an insert looks for an entry it may evict (as ReadStateTable). */
const EVICTION_SCAN = 64;

/** One read state, the way a Node service would hold it. */
export interface CachedReadState {
  readonly userId: string;
  readonly channelId: string;
  /** Where the engine keeps this state's values in the typed slab. */
  readonly slot: number;
  lastAckedId: string | null;
  mentionBias: number;
  pinnedAt: number;
}

export class LruCacheReadStateTable extends ReadStateTable {
  private readonly cache: LRUCache<string, CachedReadState>;
  /** Slots released by delete, reused first (a stack). */
  private readonly freeSlots: Uint32Array;
  private freeCount = 0;
  /** Slots below this have been handed out at least once. */
  private nextUnusedSlot = 0;

  constructor(capacity: number, flushDelayMs: number, evictionSink: DirtyEvictionSink) {
    super(capacity, flushDelayMs, evictionSink);
    // Eviction is done by insert (a dirty entry may be refused by the sink), so the cache
    // never reaches `max` on its own: max only sizes lru-cache's preallocated lists.
    this.cache = new LRUCache<string, CachedReadState>({ max: capacity });
    this.freeSlots = new Uint32Array(capacity);
  }

  override get size(): number {
    return this.cache.size;
  }

  override find(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    return this.cache.peek(keyOf(userHi, userLo, channelHi, channelLo))?.slot ?? -1;
  }

  override get(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    return this.cache.get(keyOf(userHi, userLo, channelHi, channelLo))?.slot ?? -1;
  }

  override insert(userHi: number, userLo: number, channelHi: number, channelLo: number): number {
    let slot: number;
    if (this.freeCount > 0) slot = this.freeSlots[--this.freeCount];
    else if (this.nextUnusedSlot < this.capacity) slot = this.nextUnusedSlot++;
    else {
      slot = this.evictFromCacheTail();
      if (slot === -1) return -1;
    }
    this.initEntry(slot, userHi, userLo, channelHi, channelLo);
    const userId = formatSnowflake(userHi, userLo);
    const channelId = formatSnowflake(channelHi, channelLo);
    this.cache.set(`${userId}:${channelId}`, { userId, channelId, slot, lastAckedId: null, mentionBias: 0, pinnedAt: 0 });
    return slot;
  }

  override delete(slot: number): void {
    this.cache.delete(this.keyOfSlot(slot));
    if (this.isDirty(slot)) this.unlinkDirty(slot);
    this.freeSlots[this.freeCount++] = slot;
  }

  override touch(slot: number): void {
    this.cache.get(this.keyOfSlot(slot));
  }

  override markDirty(slot: number, nowMs: number): void {
    super.markDirty(slot, nowMs);
    this.refreshEntry(slot);
  }

  /** Copies the slot's values from the slab into its entry object. */
  refreshEntry(slot: number): void {
    const entry = this.cache.peek(this.keyOfSlot(slot));
    if (entry === undefined) return;
    const acked = this.ackHi(slot) !== 0 || this.ackLo(slot) !== 0;
    entry.lastAckedId = acked ? formatSnowflake(this.ackHi(slot), this.ackLo(slot)) : null;
    entry.mentionBias = this.mentionBias(slot);
    entry.pinnedAt = this.pinnedAt(slot);
  }

  /** The entry object of `slot` (tests compare it with the slab). */
  entryOf(slot: number): CachedReadState | undefined {
    return this.cache.peek(this.keyOfSlot(slot));
  }

  override *slotsByRecency(): IterableIterator<number> {
    for (const entry of this.cache.values()) yield entry.slot;
  }

  /** The least recently used entry that is clean or that the sink takes, within EVICTION_SCAN of the tail. */
  private evictFromCacheTail(): number {
    let victimKey: string | undefined;
    let victimSlot = -1;
    let scanned = 0;
    for (const key of this.cache.rkeys()) {
      if (scanned++ === EVICTION_SCAN) break;
      const slot = this.cache.peek(key)!.slot;
      if (!this.isDirty(slot) || this.evictionSink.acceptDirtyEviction(this, slot)) {
        victimKey = key;
        victimSlot = slot;
        break;
      }
    }
    if (victimKey === undefined) return -1;
    // Deleted after the walk: lru-cache's iterators must not see the list change under them.
    this.cache.delete(victimKey);
    if (this.isDirty(victimSlot)) this.unlinkDirty(victimSlot);
    this.evictions++;
    return victimSlot;
  }

  private keyOfSlot(slot: number): string {
    return keyOf(this.userHi(slot), this.userLo(slot), this.channelHi(slot), this.channelLo(slot));
  }
}

function keyOf(userHi: number, userLo: number, channelHi: number, channelLo: number): string {
  return `${formatSnowflake(userHi, userLo)}:${formatSnowflake(channelHi, channelLo)}`;
}
