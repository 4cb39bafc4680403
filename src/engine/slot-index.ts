// An open-addressing hash index from a key to a slot of a slab table.
//
// The index itself knows no keys: its owner hashes them and answers "does slot s hold the
// key being probed?". Each cell is one uint32: the slot number + 1 in the low bits (0 marks
// an empty cell) and, in the bits above, how far the cell sits from its key's home cell.
// Linear probing with backward-shift deletion keeps lookups short without tombstones, so
// no rebuild (an O(n) stall) is ever needed however many keys come and go.
//
// Why the displacement and not a hash tag: deleting shifts each later cell of the cluster
// back unless that would move it before its home, so it needs every such cell's home. With
// the displacement in the cell that costs nothing; with a tag it meant reading the key from
// the owner's slab, a cache miss per cell (~8 a removal at load 0.75), which was the largest
// single cost of an eviction at 8M entries. The displacement filters lookups too: a cell
// whose home differs from the probe's cannot hold the key, so the owner is asked only about
// cells sharing the probe's home. A displacement too large for its bits is stored as the
// largest value ("at least this"); those rare cells fall back to asking the owner.

/** What the owning table tells the index about its keys. */
export interface SlotKeys {
  /** The 32-bit hash of the key stored in `slot`. */
  hashOfSlot(slot: number): number;
  /** True when `slot` holds the key the owner is currently probing for. */
  slotMatchesProbe(slot: number): boolean;
}

/**
 * Mixes 32-bit words into a well-spread 32-bit hash (murmur3's finaliser on a running sum).
 * The hash is returned as a signed int32: V8 passes those unboxed, where a uint32 above
 * 2^31 would be boxed into a heap number on every call.
 */
export function mixHash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ c, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ d, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const MAX_LOAD = 0.75;

/** Keeps at least two displacement bits in a cell. */
export const MAX_INDEX_CAPACITY = 2 ** 30 - 1;

export class SlotIndex {
  private readonly cells: Uint32Array;
  private readonly size: number;
  private readonly slotBits: number;
  private readonly slotMask: number;
  /** The largest displacement a cell stores; it means "this far or further". */
  private readonly maxDisplacement: number;

  /** `displacementBits` caps the bits spent on displacements (tests use it to reach the cap). */
  constructor(
    readonly capacity: number,
    private readonly keys: SlotKeys,
    displacementBits = 32,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_INDEX_CAPACITY) {
      throw new RangeError(`index capacity must be 1 to ${MAX_INDEX_CAPACITY}, got ${capacity}`);
    }
    // Cells hold slot + 1, so slot bits must cover capacity; what is left over holds the displacement.
    this.slotBits = Math.max(1, Math.ceil(Math.log2(capacity + 1)));
    this.slotMask = (2 ** this.slotBits - 1) >>> 0;
    this.maxDisplacement = 2 ** Math.min(32 - this.slotBits, displacementBits) - 1;
    this.size = Math.max(2, Math.ceil(capacity / MAX_LOAD));
    this.cells = new Uint32Array(this.size);
  }

  /** Bytes of memory the index takes. */
  get byteLength(): number {
    return this.cells.byteLength;
  }

  /** The slot holding the probed key, or -1. */
  find(hash: number): number {
    const cells = this.cells;
    const saturated = this.maxDisplacement;
    let i = this.home(hash);
    for (let distance = 0; ; distance++) {
      const cell = cells[i];
      if (cell === 0) return -1;
      const displacement = cell >>> this.slotBits;
      if (displacement === distance || (displacement === saturated && distance >= saturated)) {
        const slot = (cell & this.slotMask) - 1;
        if (this.keys.slotMatchesProbe(slot)) return slot;
      }
      if (++i === this.size) i = 0;
    }
  }

  /** Adds `slot` under `hash`; the caller guarantees the key is not present. */
  insert(hash: number, slot: number): void {
    const cells = this.cells;
    let i = this.home(hash);
    let distance = 0;
    while (cells[i] !== 0) {
      if (++i === this.size) i = 0;
      distance++;
    }
    cells[i] = this.cell(distance, slot);
  }

  /** Removes `slot` (stored under `hash`), shifting later cells of its cluster back. */
  remove(hash: number, slot: number): void {
    const cells = this.cells;
    const size = this.size;
    const want = slot + 1;
    let i = this.home(hash);
    while ((cells[i] & this.slotMask) !== want) {
      if (cells[i] === 0) throw new Error(`slot ${slot} is not in the index`);
      if (++i === size) i = 0;
    }
    // Backward shift: move each later cell of the cluster into the hole unless doing so
    // would put it before its home position.
    let hole = i;
    let j = i;
    for (;;) {
      if (++j === size) j = 0;
      const cell = cells[j];
      if (cell === 0) break;
      const cellSlot = (cell & this.slotMask) - 1;
      let displacement = cell >>> this.slotBits;
      if (displacement === this.maxDisplacement) {
        displacement = (j - this.home(this.keys.hashOfSlot(cellSlot)) + size) % size;
      }
      const distHole = (j - hole + size) % size;
      if (displacement >= distHole) {
        cells[hole] = this.cell(displacement - distHole, cellSlot);
        hole = j;
      }
    }
    cells[hole] = 0;
  }

  /** Forgets every key. */
  clear(): void {
    this.cells.fill(0);
  }

  private cell(displacement: number, slot: number): number {
    const stored = displacement < this.maxDisplacement ? displacement : this.maxDisplacement;
    return ((stored << this.slotBits) | (slot + 1)) >>> 0;
  }

  private home(hash: number): number {
    // Multiply-shift onto a size that need not be a power of two (keeps the load near
    // MAX_LOAD at any capacity). The product may round, but the same hash always lands
    // on the same cell, which is all the index needs.
    return Math.floor(((hash >>> 0) / 4294967296) * this.size);
  }
}
