import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotIndex, type SlotKeys } from '../../src/engine/slot-index.js';

// An owner whose keys are small integers and whose hash is chosen by the test: few distinct
// hashes force long clusters, displacements past the stored cap and wrap-around at the end.
class IntKeys implements SlotKeys {
  readonly keyOfSlot: number[] = [];
  probe = -1;
  constructor(readonly hash: (key: number) => number) {}
  hashOfSlot(slot: number): number {
    return this.hash(this.keyOfSlot[slot]);
  }
  slotMatchesProbe(slot: number): boolean {
    return this.keyOfSlot[slot] === this.probe;
  }
}

const operation = fc.record({ insert: fc.boolean(), key: fc.integer({ min: 0, max: 40 }) });

describe('SlotIndex', () => {
  it('finds exactly the keys present, against a Map, whatever the clustering and displacement cap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.constantFrom(0, 1, 2, 32),
        fc.constantFrom(1, 3, 1000),
        fc.integer(),
        fc.array(operation, { maxLength: 300, size: 'max' }),
        (capacity, displacementBits, distinctHashes, seed, operations) => {
          // Hashes spread over the whole int32 range so homes land anywhere, wrap included.
          const keys = new IntKeys((key) => Math.imul((key % distinctHashes) + seed, 0x9e3779b1) | 0);
          const index = new SlotIndex(capacity, keys, displacementBits);
          const model = new Map<number, number>();
          const freeSlots = Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
          for (const { insert, key } of operations) {
            keys.probe = key;
            const known = model.get(key);
            expect(index.find(keys.hash(key))).toBe(known ?? -1);
            if (insert && known === undefined && freeSlots.length > 0) {
              const slot = freeSlots.pop()!;
              keys.keyOfSlot[slot] = key;
              index.insert(keys.hash(key), slot);
              model.set(key, slot);
            } else if (!insert && known !== undefined) {
              index.remove(keys.hash(key), known);
              model.delete(key);
              freeSlots.push(known);
            }
          }
          for (let key = 0; key <= 40; key++) {
            keys.probe = key;
            expect(index.find(keys.hash(key))).toBe(model.get(key) ?? -1);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a capacity it cannot address', () => {
    const keys = new IntKeys((key) => key);
    expect(() => new SlotIndex(0, keys)).toThrow(RangeError);
    expect(() => new SlotIndex(2 ** 30, keys)).toThrow(RangeError);
  });
});
