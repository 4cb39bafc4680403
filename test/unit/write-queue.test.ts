import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WriteQueue } from '../../src/store/write-queue.js';

const operation = fc.oneof(
  fc.record({ op: fc.constant('push' as const), since: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ op: fc.constant('take' as const), count: fc.integer({ min: 1, max: 90 }) }),
  fc.record({ op: fc.constant('putBack' as const), since: fc.integer({ min: 0, max: 1000 }) }),
);

describe('WriteQueue', () => {
  it('keeps order and the longest wait, against two arrays, across wrap-around and growth', () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 300, size: 'max' }), (operations) => {
        const queue = new WriteQueue<number>();
        const items: number[] = [];
        const waits: number[] = [];
        let next = 0;
        let lastTaken: number[] = [];
        for (const operation of operations) {
          if (operation.op === 'push') {
            queue.push(next, operation.since);
            items.push(next++);
            waits.push(operation.since);
          } else if (operation.op === 'take') {
            if (items.length === 0) continue;
            const expectedSince = Math.min(...waits.slice(0, operation.count));
            const { items: taken, since } = queue.take(operation.count);
            expect(taken).toEqual(items.splice(0, operation.count));
            waits.splice(0, operation.count);
            expect(since).toBe(expectedSince);
            lastTaken = taken;
          } else {
            queue.putBack(lastTaken, operation.since);
            items.unshift(...lastTaken);
            waits.unshift(...lastTaken.map(() => operation.since));
            lastTaken = [];
          }
          expect(queue.length).toBe(items.length);
          expect(queue.oldestQueuedAt).toBe(items.length === 0 ? undefined : Math.min(...waits));
        }
        expect(queue.take(items.length + 1).items).toEqual(items);
      }),
      { numRuns: 300 },
    );
  });
});
