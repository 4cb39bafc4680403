import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChannelTable } from '../../src/engine/channel-table.js';

// Reference model: per channel, every message ever appended (id, everyone flag, mentioned
// users) in order. The table keeps only the newest `window` of them; everything it answers
// must agree with the model's tail of that length.
interface ModelMessage {
  id: number;
  everyone: boolean;
  mentions: number[];
}

// Ids: a 32-bit low half under a fixed high half above 2^53's range, increasing per channel.
const ID_HI = 0x80000001;
const USER_HI = 0x40000000;
const USERS = 4;

const operation = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), channel: fc.nat(2), everyone: fc.boolean(), mentions: fc.array(fc.nat(USERS - 1), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('create' as const), channel: fc.nat(2) }),
);

describe('ChannelTable against a model of every message', () => {
  it('keeps the newest window of messages and their mentions exactly, through ring growth and wrap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(operation, { maxLength: 120, size: 'max' }), (window, operations) => {
        const table = new ChannelTable(window);
        const model = new Map<number, ModelMessage[]>();
        const slotOf = new Map<number, number>();
        const out = new Uint32Array(2);
        for (const op of operations) {
          if (op.kind === 'create' || !slotOf.has(op.channel)) {
            const slot = table.findOrCreate(ID_HI, op.channel);
            if (slotOf.has(op.channel)) expect(slot).toBe(slotOf.get(op.channel));
            slotOf.set(op.channel, slot);
            if (!model.has(op.channel)) model.set(op.channel, []);
            if (op.kind === 'create') continue;
          }
          const c = slotOf.get(op.channel)!;
          const messages = model.get(op.channel)!;
          const id = 1000 + messages.length * 3;
          table.append(c, ID_HI, id, op.everyone);
          for (const user of op.mentions) table.addMention(c, USER_HI, user);
          messages.push({ id, everyone: op.everyone, mentions: op.mentions });

          const kept = messages.slice(-window);
          expect(table.messageCount(c)).toBe(messages.length);
          expect(table.everyoneCount(c)).toBe(messages.filter((m) => m.everyone).length);
          expect(table.windowLength(c)).toBe(kept.length);
          expect([table.newestHi(c), table.newestLo(c)]).toEqual([ID_HI, id]);
          kept.forEach((m, i) => {
            expect(table.windowMessage(c, i, out)).toBe(m.everyone);
            expect([...out]).toEqual([ID_HI, m.id]);
          });
          const visited: string[] = [];
          table.forEachMention(c, (position, userHi, userLo) => visited.push(`${position}:${userHi}:${userLo}`));
          const first = messages.length - kept.length + 1;
          expect(visited).toEqual(kept.flatMap((m, i) => m.mentions.map((u) => `${first + i}:${USER_HI}:${u}`)));
          // Every ack position inside and just outside the window, for every user.
          for (let newer = 0; newer <= kept.length; newer++) {
            const ackId = newer === kept.length ? kept[0].id - 1 : kept[kept.length - 1 - newer].id;
            expect(table.countNewerThan(c, ID_HI, ackId)).toBe(newer);
            for (let user = 0; user < USERS; user++) {
              // Raw counts: each mention_everyone, plus each mention record (ReadStates dedupes before adding).
              const newest = kept.slice(kept.length - newer);
              const expected = newest.reduce((sum, m) => sum + (m.everyone ? 1 : 0) + m.mentions.filter((u) => u === user).length, 0);
              expect(table.mentionsInNewest(c, newer, USER_HI, user)).toBe(expected);
            }
          }
        }
        expect(table.size).toBe(slotOf.size);
        for (const [channel, slot] of slotOf) expect(table.find(ID_HI, channel)).toBe(slot);
      }),
      { numRuns: 150 },
    );
  });

  it('answers -1 for a channel it does not know, and grows past its first thousand channels', () => {
    const table = new ChannelTable(4);
    expect(table.find(1, 2)).toBe(-1);
    for (let i = 0; i < 3000; i++) {
      const c = table.findOrCreate(7, i);
      table.append(c, 9, i + 1, i % 2 === 0);
    }
    for (let i = 0; i < 3000; i++) {
      const c = table.find(7, i);
      expect(table.newestLo(c)).toBe(i + 1);
      expect(table.everyoneCount(c)).toBe(i % 2 === 0 ? 1 : 0);
    }
  });
});
