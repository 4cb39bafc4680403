// The resume buffer against a plain model: a list of every frame the session sent, of which
// a RESUME from `s` must get exactly those after `s`, when the buffer still holds them all.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSnowflake } from '../../src/engine/snowflake.js';
import { encodeDispatch, type Encoding, PreparedReadState } from '../../src/gateway/codec.js';
import { decodeMessagePack } from '../../src/gateway/msgpack.js';
import { ResumeBuffer } from '../../src/gateway/resume-buffer.js';
import { ROWS_PER_PAGE, ResumePages } from '../../src/gateway/resume-pages.js';
import type { ReadStateJson } from '../../src/store/persistent-read-states.js';

const SESSION_ID = '0123456789abcdef0123456789abcdef';
const snowflake = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
// A message id is never 0: the engine's (0, 0) is "none" (null).
const messageId = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map(String);
const state: fc.Arbitrary<ReadStateJson> = fc.record({
  channel_id: snowflake,
  last_message_id: fc.option(messageId, { nil: null }),
  last_acked_id: fc.option(messageId, { nil: null }),
  unread_count: fc.nat({ max: 1000 }),
  mention_count: fc.nat({ max: 1000 }),
});
const nonce = fc.option(fc.oneof(fc.string({ maxLength: 64 }), fc.maxSafeInteger()), { nil: undefined });
const operation = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('update' as const), state, nonce }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), channelId: snowflake }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resumed' as const) }) },
);

/** Frames as comparable values, decoded with the session's encoding (JSON frames may be text or bytes). */
function comparable(frame: string | Uint8Array, encoding: Encoding): unknown {
  if (encoding === 'msgpack') return decodeMessagePack(frame as Uint8Array);
  return JSON.parse(typeof frame === 'string' ? frame : new TextDecoder().decode(frame));
}

describe('resume buffer', () => {
  it('replays exactly the frames after any sequence it covers, and covers just the last `limit`', () => {
    fc.assert(
      fc.property(fc.nat({ max: 40 }), fc.array(operation, { maxLength: 120, size: 'max' }), fc.constantFrom<Encoding>('json', 'msgpack'), (limit, operations, encoding) => {
        const readySequence = 1;
        const pages = new ResumePages();
        const buffer = new ResumeBuffer(pages, limit, readySequence);
        const sent: unknown[] = [];
        for (const op of operations) {
          if (op.kind === 'update') {
            const update = PreparedReadState.ofState(op.state);
            const s = buffer.recordUpdate(update, op.nonce);
            sent.push(comparable(update.frame(encoding, s, op.nonce), encoding));
          } else if (op.kind === 'delete') {
            const halves = new Uint32Array(2);
            parseSnowflake(op.channelId, halves, 0);
            const s = buffer.recordDelete(halves);
            sent.push(comparable(encodeDispatch(encoding, 'READ_STATE_DELETE', { channel_id: op.channelId }, s), encoding));
          } else {
            const s = buffer.recordResumed();
            sent.push(comparable(encodeDispatch(encoding, 'RESUMED', { session_id: SESSION_ID }, s), encoding));
          }
        }
        const last = readySequence + sent.length;
        expect(buffer.lastSequence).toBe(last);
        expect(buffer.size).toBe(Math.min(limit, sent.length));
        // A page more than the limit needs at most: the oldest may be part-dropped.
        expect(pages.pagesInUse).toBeLessThanOrEqual(limit === 0 ? 0 : Math.ceil(limit / ROWS_PER_PAGE) + 1);
        for (let from = 0; from <= last + 1; from++) {
          // READY itself is never replayed: a client that missed it has no session id to resume.
          const covered = from >= readySequence && from <= last && last - from <= limit;
          expect(buffer.covers(from)).toBe(covered);
          if (!covered) continue;
          const replayed: unknown[] = [];
          expect(buffer.replay(from, encoding, SESSION_ID, (frame) => replayed.push(comparable(frame, encoding)))).toBe(last - from);
          expect(replayed).toEqual(sent.slice(from - readySequence));
        }
        buffer.release();
        expect(pages.pagesInUse).toBe(0);
        buffer.recordResumed();
        expect(pages.pagesInUse).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('replays a nonce with its own dispatch only, past a full ring', () => {
    const buffer = new ResumeBuffer(new ResumePages(), 2, 1);
    const update = PreparedReadState.ofState({ channel_id: '5', last_message_id: '7', last_acked_id: null, unread_count: 1, mention_count: 0 });
    buffer.recordUpdate(update, 'first');
    buffer.recordUpdate(update, undefined);
    buffer.recordUpdate(update, 'third');
    const frames: unknown[] = [];
    buffer.replay(2, 'json', SESSION_ID, (frame) => frames.push(comparable(frame, 'json')));
    expect(frames.map((frame) => (frame as { d: { nonce?: string } }).d.nonce)).toEqual([undefined, 'third']);
    expect(buffer.covers(1)).toBe(false);
  });
});
