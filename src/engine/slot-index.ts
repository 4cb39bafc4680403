// An open-addressing hash index from a key to a slot of a struct-of-arrays table.
//
// The index itself knows no keys: its owner hashes them and answers "does slot s hold the
// key being probed?". Each cell is one uint32: the slot number + 1 in the low bits (0 marks
// an empty cell) and spare bits of the key's hash above them as a tag, so a probe touches
// the owner's key arrays only when the tag already matches. Linear probing with
// backward-shift deletion keeps lookups short without tombstones, so no rebuild (an O(n)
// stall) is ever needed however many keys come and go.

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

export class SlotIndex {
  private readonly cells: Uint32Array;
  private readonly size: number;
  private readonly slotMask: number;
  private readonly tagMask: number;

  constructor(
    readonly capacity: number,
    private readonly keys: SlotKeys,
  ) {
    // Cells hold slot + 1, so slot bits must cover capacity; what is left over is the tag.
    const slotBits = Math.max(1, Math.ceil(Math.log2(capacity + 1)));
    if (slotBits > 32) throw new RangeError(`capacity ${capacity} is above 2^32 - 1`);
    this.slotMask = slotBits === 32 ? 0xffffffff : (1 << slotBits) - 1 >>> 0;
    this.tagMask = ~this.slotMask >>> 0;
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
    const tag = this.tagOf(hash);
    let i = this.home(hash);
    for (;;) {
      const cell = cells[i];
      if (cell === 0) return -1;
      if (((cell & this.tagMask) >>> 0) === tag) {
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
    while (cells[i] !== 0) if (++i === this.size) i = 0;
    cells[i] = (this.tagOf(hash) | (slot + 1)) >>> 0;
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
      const home = this.home(this.keys.hashOfSlot((cell & this.slotMask) - 1));
      const distHome = (j - home + size) % size;
      const distHole = (j - hole + size) % size;
      if (distHome >= distHole) {
        cells[hole] = cell;
        hole = j;
      }
    }
    cells[hole] = 0;
  }

  /** Forgets every key. */
  clear(): void {
    this.cells.fill(0);
  }

  private tagOf(hash: number): number {
    // The home cell comes from the hash's high bits; the tag from its low ones (rotated up),
    // so that keys sharing a cluster rarely share a tag.
    return (((hash << 16) | (hash >>> 16)) & this.tagMask) >>> 0;
  }

  private home(hash: number): number {
    // Multiply-shift onto a size that need not be a power of two (keeps the load near
    // MAX_LOAD at any capacity). The product may round, but the same hash always lands
    // on the same cell, which is all the index needs.
    return Math.floor(((hash >>> 0) / 4294967296) * this.size);
  }
}
