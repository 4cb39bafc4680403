import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeWindow, encodeWindow } from '../../src/store/cassandra-window-blob.js';
import { emptyWindow, messagesOfWindow, type WindowMessage, windowOfMessages } from '../../src/store/recent-window.js';

// The channel window's blob format, without Cassandra: what is written is what is read back,
// and a blob that is not a whole window is refused rather than misread.

const snowflake = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
const message: fc.Arbitrary<WindowMessage> = fc.record({
  id: snowflake,
  mentionsEveryone: fc.boolean(),
  mentions: fc.array(snowflake, { maxLength: 4 }),
});

describe('channel window blob', () => {
  it('reads back every message with whom it mentions, in order', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 60, size: 'max' }), (messages) => {
        const canonical = messages.map((m) => ({ ...m, id: BigInt(m.id).toString(), mentions: m.mentions.map((u) => BigInt(u).toString()) }));
        expect(messagesOfWindow(decodeWindow(encodeWindow(windowOfMessages(messages))))).toEqual(canonical);
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips the empty window in five bytes', () => {
    const blob = encodeWindow(emptyWindow());
    expect(blob.length).toBe(5);
    expect(decodeWindow(blob)).toEqual(emptyWindow());
  });

  it('refuses an unknown format, a truncated blob and trailing bytes', () => {
    const blob = encodeWindow(windowOfMessages([{ id: '7', mentionsEveryone: false, mentions: ['8', '9'] }]));
    expect(() => decodeWindow(Buffer.alloc(0))).toThrow(/unknown format/);
    expect(() => decodeWindow(Buffer.concat([Buffer.from([2]), blob.subarray(1)]))).toThrow(/unknown format/);
    expect(() => decodeWindow(blob.subarray(0, blob.length - 1))).toThrow(/truncated/);
    expect(() => decodeWindow(blob.subarray(0, 10))).toThrow(/truncated/);
    expect(() => decodeWindow(Buffer.concat([blob, Buffer.from([0])]))).toThrow(/trailing/);
  });

  it('refuses a window whose mention counts do not match its mentions', () => {
    const window = windowOfMessages([{ id: '7', mentionsEveryone: false, mentions: ['8'] }]);
    window.mentionCounts[0] = 0;
    expect(() => encodeWindow(window)).toThrow(/mention counts/);
  });
});
