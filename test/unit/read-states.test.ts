import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DirtyEvictionSink } from '../../src/engine/read-state-table.js';
import { emptyView, Outcome, ReadStates } from '../../src/engine/read-states.js';

const keepAll: DirtyEvictionSink = { acceptDirtyEviction: () => true };
const big = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo);
const halvesOf = (id: bigint) => [Number(id >> 32n), Number(id & 0xffffffffn)] as const;

// Users and channels use ids above 2^53 so that any precision loss would show.
const U = (n: number) => halvesOf((1n << 62n) + BigInt(n));
const C = (n: number) => halvesOf((1n << 63n) + BigInt(n));

function engine(windowSize = 1000, capacity = 1000) {
  return new ReadStates({ capacity, flushDelayMs: 30_000, workerId: 1, windowSize, evictionSink: keepAll });
}

function stateOf(rs: ReadStates, user: number, channel: number) {
  const [uh, ul] = U(user);
  const [ch, cl] = C(channel);
  const slot = rs.table.find(uh, ul, ch, cl);
  if (slot === -1) return undefined;
  const v = rs.view(slot, emptyView());
  return { unread: v.unread, mentions: v.mentions, acked: big(v.ackHi, v.ackLo), last: big(v.lastMessageHi, v.lastMessageLo) };
}

function create(rs: ReadStates, channel: number, author: number, mentions: number[] = [], everyone = false, now = 1_700_000_000_000) {
  const buf = new Uint32Array(mentions.length * 2);
  mentions.forEach((m, i) => buf.set(U(m), i * 2));
  const outcome = rs.createMessage(...C(channel), ...U(author), buf, mentions.length, everyone, now);
  return { outcome, id: big(rs.messageHi, rs.messageLo) };
}

function ack(rs: ReadStates, user: number, channel: number, message: bigint) {
  return rs.ack(...U(user), ...C(channel), ...halvesOf(message), 1_700_000_000_000);
}

const join = (rs: ReadStates, user: number, channel: number) => rs.join(...U(user), ...C(channel));

describe('read-state semantics (docs/protocol.md)', () => {
  it('a new member of an empty channel has nothing unread and no ids', () => {
    const rs = engine();
    join(rs, 1, 1);
    expect(stateOf(rs, 1, 1)).toEqual({ unread: 0, mentions: 0, acked: 0n, last: 0n });
  });

  it('MESSAGE_CREATE counts unread for every other member and acks the author', () => {
    const rs = engine();
    for (const u of [1, 2, 3]) join(rs, u, 1);
    const { outcome, id } = create(rs, 1, 1);
    expect(outcome).toBe(Outcome.ok);
    expect(stateOf(rs, 1, 1)).toEqual({ unread: 0, mentions: 0, acked: id, last: id });
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 1, mentions: 0, acked: 0n, last: id });
    create(rs, 1, 1);
    expect(stateOf(rs, 3, 1)).toMatchObject({ unread: 2 });
    // Only the author's state is written: the others' counts are derived.
    expect(rs.changed.map((s) => big(rs.table.userHi(s), rs.table.userLo(s)))).toEqual([big(...U(1))]);
  });

  it('message ids grow, also within one millisecond, and exceed 2^53', () => {
    const rs = engine();
    join(rs, 1, 1);
    const ids = Array.from({ length: 50 }, () => create(rs, 1, 1).id);
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    expect(ids[0] > 2n ** 53n).toBe(true);
  });

  it('mentions count for mentioned members only, once per message, never for the author', () => {
    const rs = engine();
    for (const u of [1, 2, 3]) join(rs, u, 1);
    create(rs, 1, 1, [2, 2, 1, 99]);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 1, mentions: 1 });
    expect(stateOf(rs, 3, 1)).toMatchObject({ unread: 1, mentions: 0 });
    expect(stateOf(rs, 1, 1)).toMatchObject({ unread: 0, mentions: 0 });
    expect(stateOf(rs, 99, 1)).toBeUndefined();
  });

  it('mention_everyone mentions every other member once, even when also named', () => {
    const rs = engine();
    for (const u of [1, 2, 3]) join(rs, u, 1);
    create(rs, 1, 1, [2], true);
    create(rs, 1, 2, [], true);
    expect(stateOf(rs, 3, 1)).toMatchObject({ unread: 2, mentions: 2 });
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 0, mentions: 0 });
    expect(stateOf(rs, 1, 1)).toMatchObject({ unread: 1, mentions: 1 });
  });

  it('MESSAGE_ACK recomputes unread and mentions from the acked message', () => {
    const rs = engine();
    for (const u of [1, 2]) join(rs, u, 1);
    const m1 = create(rs, 1, 1, [2]).id;
    create(rs, 1, 1, [], true);
    const m3 = create(rs, 1, 1, [2]).id;
    create(rs, 1, 1);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 4, mentions: 3 });
    expect(ack(rs, 2, 1, m1)).toBe(Outcome.ok);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 3, mentions: 2, acked: m1 });
    expect(ack(rs, 2, 1, m3)).toBe(Outcome.ok);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 1, mentions: 0, acked: m3 });
  });

  it('acks never move backwards, and an equal or older ack still succeeds', () => {
    const rs = engine();
    for (const u of [1, 2]) join(rs, u, 1);
    const m1 = create(rs, 1, 1).id;
    const m2 = create(rs, 1, 1).id;
    ack(rs, 2, 1, m2);
    expect(ack(rs, 2, 1, m1)).toBe(Outcome.ok);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 0, acked: m2 });
    expect(rs.table.isDirty(rs.changed[0])).toBe(true);
  });

  it('an id between messages acks everything up to it', () => {
    const rs = engine();
    for (const u of [1, 2]) join(rs, u, 1);
    const m1 = create(rs, 1, 1).id;
    create(rs, 1, 1, [], false, 1_700_000_001_000);
    expect(ack(rs, 2, 1, m1 + 1n)).toBe(Outcome.ok);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 1, acked: m1 + 1n });
  });

  it('errors: unknown channel, missing access, unknown message', () => {
    const rs = engine();
    join(rs, 1, 1);
    expect(ack(rs, 1, 1, 5n)).toBe(Outcome.unknownMessage);
    const m = create(rs, 1, 1).id;
    expect(ack(rs, 1, 1, m + 1n)).toBe(Outcome.unknownMessage);
    expect(ack(rs, 1, 2, m)).toBe(Outcome.unknownChannel);
    expect(create(rs, 2, 1).outcome).toBe(Outcome.unknownChannel);
    expect(ack(rs, 2, 1, m)).toBe(Outcome.missingAccess);
    expect(create(rs, 1, 2).outcome).toBe(Outcome.missingAccess);
  });

  it('joining later starts fully read; an existing member keeps its state; leaving removes it', () => {
    const rs = engine();
    join(rs, 1, 1);
    join(rs, 2, 1);
    const m = create(rs, 1, 1).id;
    join(rs, 3, 1);
    expect(stateOf(rs, 3, 1)).toEqual({ unread: 0, mentions: 0, acked: m, last: m });
    // Memberships are written through by the caller: only the author's ack waits for write-behind.
    expect(rs.table.dirtyCount).toBe(1);
    join(rs, 2, 1);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 1 });
    expect(rs.leave(...U(2), ...C(1))).toBe(true);
    expect(stateOf(rs, 2, 1)).toBeUndefined();
    expect(rs.leave(...U(2), ...C(1))).toBe(false);
  });

  it('beyond the window, unread is reported as the window size ("999+")', () => {
    const rs = engine(10);
    for (const u of [1, 2, 3]) join(rs, u, 1);
    const first = create(rs, 1, 1).id;
    for (let i = 0; i < 24; i++) create(rs, 1, 1, [3]);
    // Nothing acked yet: every message is unread, counted exactly.
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 25 });
    ack(rs, 2, 1, first);
    expect(stateOf(rs, 2, 1)).toMatchObject({ unread: 10 });
    // Mentions counted since the last ack stay exact however far they go.
    expect(stateOf(rs, 3, 1)).toMatchObject({ mentions: 24 });
  });
});

// ---- Property test against a reference model that applies docs/protocol.md's definitions ----

interface ModelMessage {
  id: bigint;
  everyone: boolean;
  mentions: Set<number>;
}

interface ModelState {
  ack: bigint | null;
  /** The last ack landed older than the window: mentions are then only a lower bound. */
  approximate: boolean;
  mentionsSinceAck: number;
}

const USERS = 5;
const CHANNELS = 3;

const opArb = fc.oneof(
  fc.record({ kind: fc.constant('join' as const), user: fc.nat(USERS - 1), channel: fc.nat(CHANNELS - 1) }),
  fc.record({ kind: fc.constant('leave' as const), user: fc.nat(USERS - 1), channel: fc.nat(CHANNELS - 1) }),
  fc.record({
    kind: fc.constant('create' as const),
    user: fc.nat(USERS - 1),
    channel: fc.nat(CHANNELS - 1),
    mentions: fc.array(fc.nat(USERS), { maxLength: 4 }),
    everyone: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('ack' as const), user: fc.nat(USERS - 1), channel: fc.nat(CHANNELS - 1), pick: fc.nat(40), offset: fc.constantFrom(-1n, 0n, 1n) }),
);

describe('ReadStates against a reference model', () => {
  it('reports unread and mention counts as docs/protocol.md defines them', () => {
    fc.assert(
      // Windows of 6 (one ring block) and 11 (the ring moves from a block of 8 to one of 11).
      fc.property(fc.constantFrom(6, 11), fc.array(opArb, { maxLength: 150, size: 'max' }), (W, ops) => {
        const rs = engine(W);
        const messages = new Map<number, ModelMessage[]>();
        const states = new Map<string, ModelState>();
        const key = (u: number, c: number) => `${u}:${c}`;
        let now = 1_700_000_000_000;
        for (const op of ops) {
          now += 1;
          const list = messages.get(op.channel);
          if (op.kind === 'join') {
            join(rs, op.user, op.channel);
            if (!messages.has(op.channel)) messages.set(op.channel, []);
            if (!states.has(key(op.user, op.channel))) {
              const last = messages.get(op.channel)!.at(-1);
              states.set(key(op.user, op.channel), { ack: last?.id ?? null, approximate: false, mentionsSinceAck: 0 });
            }
          } else if (op.kind === 'leave') {
            expect(rs.leave(...U(op.user), ...C(op.channel))).toBe(states.delete(key(op.user, op.channel)));
          } else if (op.kind === 'create') {
            const { outcome, id } = create(rs, op.channel, op.user, op.mentions, op.everyone, now);
            if (list === undefined) {
              expect(outcome).toBe(Outcome.unknownChannel);
              continue;
            }
            if (!states.has(key(op.user, op.channel))) {
              expect(outcome).toBe(Outcome.missingAccess);
              continue;
            }
            expect(outcome).toBe(Outcome.ok);
            const mentioned = new Set(op.mentions.filter((m) => m !== op.user && states.has(key(m, op.channel))));
            list.push({ id, everyone: op.everyone, mentions: op.everyone ? new Set() : mentioned });
            states.set(key(op.user, op.channel), { ack: id, approximate: false, mentionsSinceAck: 0 });
            for (let u = 0; u < USERS; u++) {
              const s = states.get(key(u, op.channel));
              if (s && u !== op.user && (op.everyone || mentioned.has(u))) s.mentionsSinceAck++;
            }
          } else {
            const target = list === undefined || list.length === 0 ? 12345n : list[op.pick % list.length].id + op.offset;
            const outcome = ack(rs, op.user, op.channel, target);
            const state = states.get(key(op.user, op.channel));
            if (list === undefined) expect(outcome).toBe(Outcome.unknownChannel);
            else if (state === undefined) expect(outcome).toBe(Outcome.missingAccess);
            else if (list.length === 0 || target > list.at(-1)!.id) expect(outcome).toBe(Outcome.unknownMessage);
            else {
              expect(outcome).toBe(Outcome.ok);
              if (state.ack === null || target > state.ack) {
                const newer = list.filter((m) => m.id > target);
                state.ack = target;
                state.approximate = newer.length >= W && list.length > W;
                state.mentionsSinceAck = newer.filter((m) => m.everyone || m.mentions.has(op.user)).length;
                if (state.approximate) state.mentionsSinceAck = newer.slice(-W).filter((m) => m.everyone || m.mentions.has(op.user)).length;
              }
            }
          }
          // Every state agrees with the definitions after every operation.
          for (const [k, s] of states) {
            const [u, c] = k.split(':').map(Number);
            const got = stateOf(rs, u, c)!;
            const all = messages.get(c)!;
            const newer = s.ack === null ? all : all.filter((m) => m.id > s.ack!);
            const exactMentions = newer.filter((m) => m.everyone || m.mentions.has(u)).length;
            expect(got.acked).toBe(s.ack ?? 0n);
            expect(got.last).toBe(all.at(-1)?.id ?? 0n);
            expect(got.unread).toBe(s.ack === null ? all.length : Math.min(newer.length, W));
            if (s.approximate) {
              expect(got.mentions).toBeLessThanOrEqual(exactMentions);
              expect(got.mentions).toBe(s.mentionsSinceAck);
            } else {
              expect(got.mentions).toBe(exactMentions);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
