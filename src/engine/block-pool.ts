// Variable-length arrays of uint32 words without a heap object each: blocks in size
// classes (room for 8, 16, 32, ... elements), each class one growable slab with a free list.
//
// Why: the channel table keeps, per channel, a ring of recent messages and one of mentions
// that grow from nothing to the window size. As typed arrays of their own they were ~10 V8
// heap objects a channel, which every major GC traces: at millions of channels the same
// stalls the read-state slab exists to avoid. Here a channel holds (class, block) numbers.

const NO_BLOCKS = new Uint32Array(0);

export class BlockPool {
  private readonly slabs: Uint32Array[] = [];
  private readonly handedOut: number[] = [];
  private readonly freeBlocks: Uint32Array[] = [];
  private readonly freeCount: number[] = [];
  /** room(c) for each class, precomputed: it is read on every ring access. */
  private readonly rooms: Uint32Array;
  /** Classes: room(c) = min(maxRoom, 8 * 2^c); the last one has room maxRoom. */
  readonly classes: number;

  constructor(
    /** uint32 words per element. */
    readonly wordsPerElement: number,
    /** Elements in the largest block. */
    readonly maxRoom: number,
  ) {
    if (!Number.isInteger(maxRoom) || maxRoom < 1) throw new RangeError(`block room must be a positive integer, got ${maxRoom}`);
    let classes = 1;
    while (8 * 2 ** (classes - 1) < maxRoom) classes++;
    this.classes = classes;
    this.rooms = new Uint32Array(classes);
    for (let c = 0; c < classes; c++) this.rooms[c] = Math.min(maxRoom, 8 * 2 ** c);
    for (let c = 0; c < classes; c++) {
      this.slabs.push(NO_BLOCKS);
      this.handedOut.push(0);
      this.freeBlocks.push(NO_BLOCKS);
      this.freeCount.push(0);
    }
  }

  /** Elements a block of class `c` holds. */
  room(c: number): number {
    return this.rooms[c];
  }

  /** The slab of class `c`. Replaced when the class grows: read it again after alloc. */
  words(c: number): Uint32Array {
    return this.slabs[c];
  }

  /** First word of element `i` of block `block` in class `c`. */
  at(c: number, block: number, i: number): number {
    return (block * this.rooms[c] + i) * this.wordsPerElement;
  }

  /** A block of class `c`, its contents unspecified. */
  alloc(c: number): number {
    if (this.freeCount[c] > 0) return this.freeBlocks[c][--this.freeCount[c]];
    const block = this.handedOut[c]++;
    const needed = (block + 1) * this.room(c) * this.wordsPerElement;
    if (needed > this.slabs[c].length) {
      // Doubling: the copy is O(blocks of the class), once per doubling.
      const grown = new Uint32Array(Math.max(needed, this.slabs[c].length * 2));
      grown.set(this.slabs[c]);
      this.slabs[c] = grown;
    }
    return block;
  }

  /**
   * Moves a ring of `length` elements that starts at element `first` of (c, block) to the
   * start of a new block of class `toClass`, oldest first, and releases the old block.
   * Returns the new block.
   */
  moveRing(c: number, block: number, first: number, length: number, toClass: number): number {
    const moved = this.alloc(toClass);
    const from = this.slabs[c];
    const to = this.slabs[toClass];
    const width = this.wordsPerElement;
    for (let i = 0; i < length; i++) {
      const src = this.at(c, block, (first + i) % this.rooms[c]);
      const dst = this.at(toClass, moved, i);
      for (let w = 0; w < width; w++) to[dst + w] = from[src + w];
    }
    this.release(c, block);
    return moved;
  }

  release(c: number, block: number): void {
    if (this.freeCount[c] === this.freeBlocks[c].length) {
      const grown = new Uint32Array(Math.max(8, this.freeBlocks[c].length * 2));
      grown.set(this.freeBlocks[c]);
      this.freeBlocks[c] = grown;
    }
    this.freeBlocks[c][this.freeCount[c]++] = block;
  }

  /** Bytes of typed arrays held. */
  get byteLength(): number {
    let bytes = 0;
    for (let c = 0; c < this.classes; c++) bytes += this.slabs[c].byteLength + this.freeBlocks[c].byteLength;
    return bytes;
  }
}
