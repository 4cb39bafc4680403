import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DirtyEvictionSink, type FlushSink, ReadStateTable } from '../../src/engine/read-state-table.js';

// Reference model: a Map in LRU link order (oldest first) plus an array of dirty keys in order of
// first change. The slab must agree with it after every operation.
interface ModelEntry {
  ack: number;
  dirtySince: number | undefined;
}

type Key = readonly [number, number, number, number];
const keyOf = (k: Key) => k.join(':');

class Model {
  entries = new Map<string, ModelEntry>();
  dirty: string[] = [];
  constructor(
    readonly capacity: number,
    readonly delay: number,
  ) {}

  /** Counts links at the head; an entry touched within capacity / 4 links of its own keeps its place. */
  links = 0;
  linkedAt = new Map<string, number>();

  touch(id: string) {
    if (this.links - this.linkedAt.get(id)! < Math.max(1, Math.floor(this.capacity / 4))) return;
    const e = this.entries.get(id)!;
    this.entries.delete(id);
    this.entries.set(id, e);
    this.linkedAt.set(id, ++this.links);
  }

  /** Mirrors the eviction rule: the LRU-most entry that is clean or accepted by the sink, within 64 of the tail. */
  insert(id: string, accepts: boolean): { ok: boolean; evicted?: string; evictedDirty?: boolean } {
    let evicted: string | undefined;
    let evictedDirty = false;
    if (this.entries.size === this.capacity) {
      const candidates = [...this.entries.keys()].slice(0, 64);
      evicted = candidates.find((c) => this.entries.get(c)!.dirtySince === undefined || accepts);
      if (evicted === undefined) return { ok: false };
      evictedDirty = this.entries.get(evicted)!.dirtySince !== undefined;
      this.remove(evicted);
    }
    this.entries.set(id, { ack: 0, dirtySince: undefined });
    this.linkedAt.set(id, ++this.links);
    return { ok: true, evicted, evictedDirty };
  }

  remove(id: string) {
    this.entries.delete(id);
    this.dirty = this.dirty.filter((d) => d !== id);
  }

  markDirty(id: string, now: number) {
    const e = this.entries.get(id)!;
    if (e.dirtySince !== undefined) return;
    e.dirtySince = now;
    this.dirty.push(id);
  }

  takeDue(now: number, max: number): string[] {
    const out: string[] = [];
    while (out.length < max && this.dirty.length > 0) {
      const id = this.dirty[0];
      if (now - this.entries.get(id)!.dirtySince! < this.delay) break;
      this.dirty.shift();
      this.entries.get(id)!.dirtySince = undefined;
      out.push(id);
    }
    return out;
  }
}

class RecordingSink implements DirtyEvictionSink, FlushSink {
  accepts = true;
  evicted: string[] = [];
  flushed: string[] = [];
  acceptDirtyEviction(table: ReadStateTable, slot: number): boolean {
    if (this.accepts) this.evicted.push(slotKey(table, slot));
    return this.accepts;
  }
  flushEntry(table: ReadStateTable, slot: number): void {
    this.flushed.push(slotKey(table, slot));
  }
}

const slotKey = (t: ReadStateTable, s: number) => keyOf([t.userHi(s), t.userLo(s), t.channelHi(s), t.channelLo(s)]);

// Few distinct keys (16, against capacities up to 12) so that operations keep hitting present
// entries and the LRU order is exercised; halves drawn from edge values and above 2^53.
const halves = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0x200000, 123456789];
const keyPool: Key[] = Array.from({ length: 16 }, (_, i) => [halves[i % 8], i < 8 ? 0 : 0xffffffff, halves[(i * 3) % 8], i % 2 === 0 ? 1 : 0xfffffffe]);
const key: fc.Arbitrary<Key> = fc.constantFrom(...keyPool);

const op = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), key, accepts: fc.boolean() }),
  fc.record({ kind: fc.constant('get' as const), key }),
  fc.record({ kind: fc.constant('delete' as const), key }),
  fc.record({ kind: fc.constant('dirty' as const), key, ack: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }), max: fc.integer({ min: 0, max: 4 }) }),
);

describe('ReadStateTable against a Map model', () => {
  it('agrees on contents, LRU order (bumped once a quarter), eviction, dirty order and flush timing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 2 ** 32 - 100 }), fc.array(op, { maxLength: 200, size: 'max' }), (capacity, delay, start, ops) => {
        const sink = new RecordingSink();
        const table = new ReadStateTable(capacity, delay, sink);
        const model = new Model(capacity, delay);
        // Start anywhere on the 32-bit millisecond clock, so the wrap is exercised too.
        let now = start;
        for (const o of ops) {
          if (o.kind === 'tick') {
            now += o.ms;
            sink.flushed = [];
            const taken = table.takeDue(now, o.max, sink);
            const expected = model.takeDue(now, o.max);
            expect(sink.flushed).toEqual(expected);
            expect(taken).toBe(expected.length);
            continue;
          }
          const id = keyOf(o.key);
          const slot = table.find(...o.key);
          expect(slot !== -1).toBe(model.entries.has(id));
          if (o.kind === 'upsert') {
            if (slot !== -1) {
              table.touch(slot);
              model.touch(id);
            } else {
              sink.accepts = o.accepts;
              sink.evicted = [];
              const got = table.insert(...o.key);
              const want = model.insert(id, o.accepts);
              expect(got !== -1).toBe(want.ok);
              expect(sink.evicted).toEqual(want.evictedDirty ? [want.evicted] : []);
            }
          } else if (o.kind === 'get') {
            expect(table.get(...o.key) !== -1).toBe(model.entries.has(id));
            if (model.entries.has(id)) model.touch(id);
          } else if (o.kind === 'delete') {
            if (slot !== -1) {
              table.delete(slot);
              model.remove(id);
            }
          } else if (slot !== -1) {
            table.setAck(slot, 0, o.ack);
            model.entries.get(id)!.ack = o.ack;
            table.markDirty(slot, now);
            model.markDirty(id, now);
          }
          expect(table.size).toBe(model.entries.size);
          expect(table.dirtyCount).toBe(model.dirty.length);
        }
        // Final state: same keys in the same recency order, same values, same dirty order.
        const byRecency = [...table.slotsByRecency()];
        expect(byRecency.map((s) => slotKey(table, s))).toEqual([...model.entries.keys()].reverse());
        for (const s of byRecency) expect(table.ackLo(s)).toBe(model.entries.get(slotKey(table, s))!.ack);
        expect([...table.dirtySlots()].map((s) => slotKey(table, s))).toEqual(model.dirty);
      }),
      { numRuns: 600 },
    );
  });

  it('capacity 1: each insert evicts the only entry and hands it over when dirty', () => {
    const sink = new RecordingSink();
    const table = new ReadStateTable(1, 10, sink);
    const a = table.insert(1, 1, 9, 9);
    table.markDirty(a, 0);
    const b = table.insert(2, 2, 9, 9);
    expect(sink.evicted).toEqual(['1:1:9:9']);
    expect(table.find(1, 1, 9, 9)).toBe(-1);
    expect(table.find(2, 2, 9, 9)).toBe(b);
    expect(table.dirtyCount).toBe(0);
    expect(table.evictions).toBe(1);
  });

  it('keeps dirty entries the sink refuses and evicts the next clean one instead', () => {
    const sink = new RecordingSink();
    const table = new ReadStateTable(3, 10, sink);
    const first = table.insert(0, 1, 0, 1);
    table.insert(0, 2, 0, 1);
    table.insert(0, 3, 0, 1);
    table.markDirty(first, 0);
    sink.accepts = false;
    expect(table.insert(0, 4, 0, 1)).not.toBe(-1);
    expect(table.find(0, 1, 0, 1)).toBe(first);
    expect(table.find(0, 2, 0, 1)).toBe(-1);
  });

  it('reports full when every entry near the tail is dirty and refused', () => {
    const sink = new RecordingSink();
    sink.accepts = false;
    const table = new ReadStateTable(2, 10, sink);
    table.markDirty(table.insert(0, 1, 0, 1), 0);
    table.markDirty(table.insert(0, 2, 0, 1), 0);
    expect(table.insert(0, 3, 0, 1)).toBe(-1);
    expect(table.size).toBe(2);
  });

  it('takes only the due entries, oldest first, and tells when the next falls due and how overdue the oldest is', () => {
    const sink = new RecordingSink();
    const table = new ReadStateTable(100, 30_000, sink);
    expect(table.msOverdue(50_000)).toBe(0);
    for (let i = 0; i < 100; i++) table.markDirty(table.insert(0, i, 0, 0), i * 1000);
    expect(table.msUntilNextDue(10_000)).toBe(20_000);
    expect(table.msOverdue(10_000)).toBe(0);
    expect(table.takeDue(29_999, 1000, sink)).toBe(0);
    expect(table.msOverdue(35_500)).toBe(5_500);
    expect(table.takeDue(35_500, 3, sink)).toBe(3);
    expect(table.msOverdue(35_500)).toBe(2_500);
    expect(table.takeDue(35_500, 1000, sink)).toBe(3);
    expect(sink.flushed).toEqual([0, 1, 2, 3, 4, 5].map((i) => `0:${i}:0:0`));
    expect(table.msUntilNextDue(35_500)).toBe(500);
    expect(table.msOverdue(35_500)).toBe(0);
  });

  it('holds ids above 2^53 and many keys with colliding hashes apart', () => {
    const sink = new RecordingSink();
    const n = 50_000;
    const table = new ReadStateTable(n, 0, sink);
    for (let i = 0; i < n; i++) table.insert(0xffffffff, i, 0xfffffffe, i * 7);
    for (let i = 0; i < n; i += 97) expect(table.find(0xffffffff, i, 0xfffffffe, i * 7)).not.toBe(-1);
    expect(table.find(0xffffffff, n, 0xfffffffe, n * 7)).toBe(-1);
  });
});
