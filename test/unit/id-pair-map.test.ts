import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdPairMap } from '../../src/store/id-pair-map.js';

// Pairs from few distinct halves, so that pairs share a user, a channel or a half, and
// words near 2^32 (which V8 boxes) appear.
const half = fc.constantFrom(0, 1, 7, 0x7fffffff, 0x80000000, 0xffffffff);
const pair = fc.tuple(half, half, half, half);
const operation = fc.record({ op: fc.constantFrom('set', 'set', 'delete', 'get'), pair, value: fc.integer() });

describe('IdPairMap', () => {
  it('holds exactly what a Map keyed by the pair holds, through growth and reuse of freed cells', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(operation, { maxLength: 400, size: 'max' }), (initialCapacity, operations) => {
        const map = new IdPairMap<{ value: number }>(initialCapacity);
        const model = new Map<string, { value: number }>();
        for (const { op, pair: [a, b, c, d], value } of operations) {
          const key = `${a},${b},${c},${d}`;
          if (op === 'set') {
            const boxed = { value };
            map.set(a, b, c, d, boxed);
            model.set(key, boxed);
          } else if (op === 'delete') {
            expect(map.delete(a, b, c, d)).toBe(model.delete(key));
          }
          expect(map.get(a, b, c, d)).toBe(model.get(key));
          expect(map.has(a, b, c, d)).toBe(model.has(key));
          expect(map.size).toBe(model.size);
        }
        for (const [key, boxed] of model) {
          const [a, b, c, d] = key.split(',').map(Number);
          expect(map.get(a, b, c, d)).toBe(boxed);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps thousands of pairs apart after growing from one cell', () => {
    const map = new IdPairMap<number[]>(1);
    for (let i = 0; i < 5000; i++) map.set(i >>> 4, i, 0xffffffff - i, i & 15, [i]);
    for (let i = 0; i < 5000; i += 2) expect(map.delete(i >>> 4, i, 0xffffffff - i, i & 15)).toBe(true);
    expect(map.size).toBe(2500);
    for (let i = 0; i < 5000; i++) expect(map.get(i >>> 4, i, 0xffffffff - i, i & 15)).toEqual(i % 2 === 0 ? undefined : [i]);
  });
});
