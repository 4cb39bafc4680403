import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DirtyEvictionSink, type FlushSink, ReadStateTable } from '../../src/engine/read-state-table.js';
import { formatSnowflake } from '../../src/engine/snowflake.js';
import { LruCacheReadStateTable } from '../bench/lru-cache-read-state-table.js';

// The benchmark's lru-cache table must be a drop-in for the engine's: the same operations
// give the same answers, evictions, flushes and recency order. Slots may differ (each keeps
// its own free list), so everything is compared by key.

type Key = readonly [number, number, number, number];
const keyText = (k: Key) => k.join(':');
const slotKey = (t: ReadStateTable, s: number) => keyText([t.userHi(s), t.userLo(s), t.channelHi(s), t.channelLo(s)]);

class RecordingSink implements DirtyEvictionSink, FlushSink {
  accepts = true;
  evicted: string[] = [];
  flushed: string[] = [];
  acceptDirtyEviction(table: ReadStateTable, slot: number): boolean {
    if (this.accepts) this.evicted.push(`${slotKey(table, slot)}=${table.ackLo(slot)}`);
    return this.accepts;
  }
  flushEntry(table: ReadStateTable, slot: number): void {
    this.flushed.push(`${slotKey(table, slot)}=${table.ackLo(slot)}`);
  }
}

const half = fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x200000);
const key: fc.Arbitrary<Key> = fc.tuple(half, fc.constantFrom(0, 7), half, fc.constantFrom(1, 0xfffffffe));

const op = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), key, accepts: fc.boolean() }),
  fc.record({ kind: fc.constant('get' as const), key }),
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('change' as const), key, ack: fc.integer({ min: 0, max: 0xffffffff }), bias: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }), max: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ kind: fc.constant('flushAll' as const) }),
);

describe('LruCacheReadStateTable', () => {
  it('behaves like ReadStateTable on the same operations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 30 }), fc.array(op, { maxLength: 200, size: 'max' }), (capacity, delay, ops) => {
        const engineSink = new RecordingSink();
        const lruSink = new RecordingSink();
        const engine = new ReadStateTable(capacity, delay, engineSink);
        const lru = new LruCacheReadStateTable(capacity, delay, lruSink);
        const both: [ReadStateTable, RecordingSink][] = [
          [engine, engineSink],
          [lru, lruSink],
        ];
        let now = 1000;
        for (const o of ops) {
          for (const [, sink] of both) {
            sink.evicted = [];
            sink.flushed = [];
          }
          if (o.kind === 'tick') {
            now += o.ms;
            expect(lru.takeDue(now, o.max, lruSink)).toBe(engine.takeDue(now, o.max, engineSink));
            expect(lru.msUntilNextDue(now)).toBe(engine.msUntilNextDue(now));
          } else if (o.kind === 'flushAll') {
            expect(lru.takeAllDirty(lruSink)).toBe(engine.takeAllDirty(engineSink));
          } else {
            const answers = both.map(([table, sink]) => {
              const slot = table.find(...o.key);
              if (o.kind === 'upsert') {
                if (slot !== -1) {
                  table.touch(slot);
                  return true;
                }
                sink.accepts = o.accepts;
                return table.insert(...o.key) !== -1;
              }
              if (o.kind === 'get') return table.get(...o.key) !== -1;
              if (slot === -1) return false;
              if (o.kind === 'delete') table.delete(slot);
              else {
                table.setAck(slot, 0, o.ack);
                table.setMentionBias(slot, table.mentionBias(slot) + o.bias);
                table.markDirty(slot, now);
              }
              return true;
            });
            expect(answers[1]).toBe(answers[0]);
          }
          expect(lruSink.evicted).toEqual(engineSink.evicted);
          expect(lruSink.flushed).toEqual(engineSink.flushed);
          expect(lru.size).toBe(engine.size);
          expect(lru.dirtyCount).toBe(engine.dirtyCount);
          expect(lru.evictions).toBe(engine.evictions);
        }
        // Same keys in the same recency order, same values, same dirty order.
        const byRecency = (t: ReadStateTable) => [...t.slotsByRecency()].map((s) => `${slotKey(t, s)}=${t.ackLo(s)},${t.mentionBias(s)}`);
        expect(byRecency(lru)).toEqual(byRecency(engine));
        expect([...lru.dirtySlots()].map((s) => slotKey(lru, s))).toEqual([...engine.dirtySlots()].map((s) => slotKey(engine, s)));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps each entry object in step with the slab values the engine writes', () => {
    const sink = new RecordingSink();
    const table = new LruCacheReadStateTable(4, 10, sink);
    const slot = table.insert(0x10000000, 5, 0x20000000, 9);
    expect(table.entryOf(slot)).toEqual({
      userId: formatSnowflake(0x10000000, 5),
      channelId: formatSnowflake(0x20000000, 9),
      slot,
      lastAckedId: null,
      mentionBias: 0,
      pinnedAt: 0,
    });
    table.setAck(slot, 0x30000000, 77);
    table.setMentionBias(slot, -2);
    table.markDirty(slot, 0);
    expect(table.entryOf(slot)).toMatchObject({ lastAckedId: formatSnowflake(0x30000000, 77), mentionBias: -2 });
    // A second change while already dirty still reaches the object.
    table.setMentionBias(slot, 3);
    table.markDirty(slot, 5);
    expect(table.entryOf(slot)?.mentionBias).toBe(3);
  });
});
