// One ring (a FIFO of fixed-width elements) per owner slot, held in a BlockPool: an owner's
// ring is four numbers in typed-array columns (block class, block, first element, length),
// so there is no heap object per ring. A full ring moves into a block of the next class;
// the owner drops elements from the front when they leave its window.

import { BlockPool } from './block-pool.js';

/** An owner without a block yet (nothing ever pushed). */
const NO_BLOCK = 0xffffffff;

export class BlockRings {
  private readonly pool: BlockPool;
  private classes: Uint8Array;
  private blocks: Uint32Array;
  private firsts: Uint32Array;
  private lengths: Uint32Array;

  constructor(wordsPerElement: number, maxRoom: number, owners: number) {
    this.pool = new BlockPool(wordsPerElement, maxRoom);
    this.classes = new Uint8Array(owners);
    this.blocks = new Uint32Array(owners).fill(NO_BLOCK);
    this.firsts = new Uint32Array(owners);
    this.lengths = new Uint32Array(owners);
  }

  length(r: number): number {
    return this.lengths[r];
  }

  /** The slab holding ring r's elements. Replaced when the ring grows: read it again after push. */
  words(r: number): Uint32Array {
    return this.pool.words(this.classes[r]);
  }

  /** First word, in words(r), of element i of ring r (0 = oldest). */
  at(r: number, i: number): number {
    const cls = this.classes[r];
    return this.pool.at(cls, this.blocks[r], (this.firsts[r] + i) % this.pool.room(cls));
  }

  /** Appends an element to ring r, its words unspecified; returns its first word in words(r). */
  push(r: number): number {
    const length = this.lengths[r];
    if (this.blocks[r] === NO_BLOCK || length === this.pool.room(this.classes[r])) this.grow(r);
    this.lengths[r] = length + 1;
    return this.at(r, length);
  }

  /** Drops the oldest element of ring r, which must not be empty. */
  dropFirst(r: number): void {
    this.firsts[r] = (this.firsts[r] + 1) % this.pool.room(this.classes[r]);
    this.lengths[r]--;
  }

  /** Makes room for `owners` rings; never shrinks. */
  resize(owners: number): void {
    this.classes = grownCopy(this.classes, new Uint8Array(owners));
    this.blocks = grownCopy(this.blocks, new Uint32Array(owners).fill(NO_BLOCK));
    this.firsts = grownCopy(this.firsts, new Uint32Array(owners));
    this.lengths = grownCopy(this.lengths, new Uint32Array(owners));
  }

  /** Moves ring r into a block of the next class (its first block when it has none). */
  private grow(r: number): void {
    const block = this.blocks[r];
    const cls = block === NO_BLOCK ? 0 : this.classes[r] + 1;
    if (cls === this.pool.classes) throw new RangeError(`ring holds ${this.pool.maxRoom} elements at most`);
    this.blocks[r] = block === NO_BLOCK ? this.pool.alloc(cls) : this.pool.moveRing(this.classes[r], block, this.firsts[r], this.lengths[r], cls);
    this.classes[r] = cls;
    this.firsts[r] = 0;
  }
}

/** `to`, a larger column, with `from` copied into its start. */
export function grownCopy<T extends Uint8Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
