// The gateway's codec: strict MessagePack in and out (msgpackr, behind a check that lets
// only standard data through), frame validation per opcode, snowflake and nonce rules, and
// the prepared READ_STATE_UPDATE frames.

import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  canonicalSnowflake,
  type ClientRequest,
  decodeFrame,
  encodeDispatch,
  encodeError,
  encodeHeartbeatAck,
  encodeHello,
  PreparedReadState,
} from '../../src/gateway/codec.js';
import { decodeMessagePack, MAX_MESSAGEPACK_DEPTH } from '../../src/gateway/msgpack.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });
const bytes = (...values: number[]) => new Uint8Array(values);
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const msgpack = (value: unknown) => new Uint8Array(packr.pack(value));
/** Copies a decoded value into plain objects, for comparisons. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** JSON-like values whose numbers survive both encoders unchanged (no -0). */
const jsonLike = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown);

describe('MessagePack decoder', () => {
  it('reads whatever msgpackr writes from JSON-like values', () => {
    fc.assert(
      fc.property(jsonLike, (value) => {
        // A "__proto__" key comes back renamed (see below).
        fc.pre(!JSON.stringify(value).includes('"__proto__"'));
        expect(plain(decodeMessagePack(msgpack(value)))).toEqual(value);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads every integer width and floats exactly', () => {
    for (const value of [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1), 1.5, -0.25, 1e300]) {
      expect(decodeMessagePack(msgpack(value))).toBe(value);
    }
    expect(decodeMessagePack(bytes(0xca, 0x3f, 0xc0, 0, 0))).toBe(1.5);
    // uint64 above 2^53: rounded, so never a safe integer.
    expect(Number.isSafeInteger(decodeMessagePack(bytes(0xcf, 0, 0x20, 0, 0, 0, 0, 0, 1)))).toBe(false);
  });

  it('refuses 0xc1, every extension type, truncation and trailing bytes', () => {
    const bad = [
      bytes(0xc1),
      bytes(0xd4, 0x01, 0x00),
      bytes(0xd5, 0x01, 0, 0),
      bytes(0xd6, 0xff, 0, 0, 0, 1),
      bytes(0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1),
      bytes(0xd8, 0x01, ...new Array<number>(16).fill(0)),
      bytes(0xc7, 0x01, 0x01, 0x00),
      bytes(0xc8, 0x00, 0x01, 0x01, 0x00),
      bytes(0xc9, 0, 0, 0, 1, 0x01, 0x00),
      bytes(),
      bytes(0x92, 0x01),
      bytes(0xa5, 0x61),
      bytes(0xcd, 0x01),
      bytes(0xdd, 0xff, 0xff, 0xff, 0xff),
      bytes(0xdf, 0xff, 0xff, 0xff, 0xff),
      bytes(0x01, 0x02),
      // msgpackr's own extensions that it would decode into plain data: undefined (type 0),
      // a record definition (0x72) and a string bundle (0x62).
      bytes(0x82, 0xa2, 0x6f, 0x70, 0x01, 0xa1, 0x64, 0xd4, 0x00, 0x00),
      bytes(0xd4, 0x72, 0x40, 0x91, 0xa2, 0x6f, 0x70, 0x01),
      bytes(0xd5, 0x72, 0x40, 0x00, 0x91, 0xa2, 0x6f, 0x70, 0x01),
      bytes(0xd6, 0x62, 0, 0, 0, 0, 0x81, 0xa2, 0x6f, 0x70, 0x01),
      // A map key that is an array, and strings that are not UTF-8 (short, and long enough for
      // msgpackr's other string paths).
      bytes(0x81, 0x91, 0x01, 0x01),
      bytes(0xa2, 0xff, 0xfe),
      bytes(0xd9, 0x02, 0xc3, 0x28),
      bytes(0xd9, 40, ...new Array<number>(39).fill(0x61), 0xff),
      bytes(0xd9, 100, ...new Array<number>(99).fill(0x61), 0xc3),
      bytes(0x81, 0xa2, 0xff, 0xfe, 0x01),
    ];
    for (const frame of bad) expect(() => decodeMessagePack(frame), Buffer.from(frame).toString('hex')).toThrow();
  });

  it('refuses nesting deeper than it is willing to recurse', () => {
    const nested = (depth: number) => {
      const frame = new Uint8Array(depth + 1).fill(0x91);
      frame[depth] = 0xc0;
      return frame;
    };
    expect(() => decodeMessagePack(nested(MAX_MESSAGEPACK_DEPTH))).not.toThrow();
    expect(() => decodeMessagePack(nested(MAX_MESSAGEPACK_DEPTH + 1))).toThrow(/deep/);
    expect(() => decodeMessagePack(nested(4095))).toThrow(/deep/);
    expect(decodeFrame(nested(4095), 'msgpack')).toEqual({ kind: 'close', code: 4002 });
    // Maps too: 1365 levels of {a: …} fill 4096 bytes.
    const maps = new Uint8Array(4096).fill(0xc0);
    for (let at = 0; at + 3 < maps.length; at += 3) maps.set([0x81, 0xa1, 0x61], at);
    expect(decodeFrame(maps, 'msgpack')).toEqual({ kind: 'close', code: 4002 });
  });

  it('answers 4002 when decoding runs out of stack, and keeps decoding afterwards', () => {
    const ok = msgpack({ op: 1, d: null });
    // As deep as allowed: x is at depth 1.
    const nested = new Uint8Array(MAX_MESSAGEPACK_DEPTH).fill(0x91);
    nested[MAX_MESSAGEPACK_DEPTH - 1] = 0xc0;
    const frame = msgpack({ op: 1, d: null, x: unpackr.unpack(nested) });
    // Recurse until even a shallow decode overflows the stack, then decode from each depth
    // on the way back up: some of them fail inside msgpackr.
    const answers = new Set<string>();
    const descend = (depth: number): void => {
      try {
        descend(depth + 1);
      } catch {
        // the stack is full here
      }
      if (depth % 50 === 0) answers.add(JSON.stringify(decodeFrame(frame, 'msgpack')));
    };
    descend(0);
    expect([...answers].sort()).toEqual(['{"kind":"close","code":4002}', '{"kind":"heartbeat"}']);
    expect(decodeFrame(ok, 'msgpack')).toEqual({ kind: 'heartbeat' });
    expect(decodeFrame(frame, 'msgpack')).toEqual({ kind: 'heartbeat' });
  });

  it('never lets a "__proto__" key set a prototype', () => {
    // msgpackr renames the key to "__proto_" (the old decoder kept it in a prototype-less object).
    const payload = JSON.parse('{"__proto__":{"polluted":1,"op":2},"op":1}') as unknown;
    const decoded = decodeMessagePack(msgpack(payload)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['__proto_', 'op']);
    expect(decoded.polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The same as a str8 key in a map16.
    const wide = bytes(0xde, 0x00, 0x02, 0xd9, 0x09, ...Buffer.from('__proto__'), 0x81, 0xa2, 0x6f, 0x70, 0x02, 0xa2, 0x6f, 0x70, 0x01);
    expect(Object.getPrototypeOf(decodeMessagePack(wide))).toBe(Object.prototype);
    expect(decodeFrame(wide, 'msgpack')).toEqual({ kind: 'heartbeat' });
    expect(decodeFrame(msgpack({ op: 21, d: JSON.parse('{"__proto__":{"channel_id":"1","message_id":"2"}}') as unknown }), 'msgpack')).toEqual({
      kind: 'invalid',
      op: 21,
      nonce: undefined,
    });
  });
});

describe('MessagePack server frames', () => {
  it('write standard MessagePack that msgpackr reads back', () => {
    fc.assert(
      fc.property(jsonLike, (value) => {
        // msgpackr renames a "__proto__" key on reading (its own guard).
        fc.pre(!JSON.stringify(value).includes('"__proto__"'));
        expect(unpackr.unpack(encodeDispatch('msgpack', 'X', value, 1) as Uint8Array)).toEqual({ op: 0, t: 'X', s: 1, d: value });
      }),
      { numRuns: 2000 },
    );
  });

  it('use the smallest standard encoding, int64 for integers beyond 32 bits, and never an extension', () => {
    expect([...(encodeHeartbeatAck('msgpack') as Uint8Array)]).toEqual([0x82, 0xa2, 0x6f, 0x70, 0x0b, 0xa1, 0x64, 0xc0]);
    const tail = (frame: unknown) => [...(frame as Uint8Array).subarray(-9)];
    // d = {code, message, nonce}: the nonce is the last value.
    expect(tail(encodeError('msgpack', 10008, 2 ** 40))).toEqual([0xd3, 0, 0, 0x01, 0, 0, 0, 0, 0]);
    expect(tail(encodeError('msgpack', 10008, -(2 ** 53 - 1)))).toEqual([0xd3, 0xff, 0xe0, 0, 0, 0, 0, 0, 0x01]);
    expect([...(encodeError('msgpack', 10008, -33) as Uint8Array)].slice(-2)).toEqual([0xd0, 0xdf]);
    expect([...(encodeError('msgpack', 10008, 65536) as Uint8Array)].slice(-5)).toEqual([0xce, 0, 1, 0, 0]);
    // Undefined members are left out, as in JSON.
    expect(unpackr.unpack(encodeDispatch('msgpack', 'X', { a: undefined, b: [1] }, 1) as Uint8Array)).toEqual({ op: 0, t: 'X', s: 1, d: { b: [1] } });
    const update = PreparedReadState.ofState({ channel_id: '1', last_message_id: null, last_acked_id: null, unread_count: 2 ** 33, mention_count: 0 });
    const frame = update.frame('msgpack', 2 ** 40, 2 ** 52) as Uint8Array;
    expect(() => decodeMessagePack(frame)).not.toThrow();
    expect(Buffer.from(frame).includes(Buffer.of(0xcb))).toBe(false);
  });
});

describe('decodeFrame', () => {
  const decode = (value: unknown, encoding: 'json' | 'msgpack' = 'json') => decodeFrame(encoding === 'json' ? json(value) : msgpack(value), encoding);

  it('closes with 4002 for what cannot be decoded and 4001 for opcodes clients may not send', () => {
    const close = (code: number): ClientRequest => ({ kind: 'close', code } as ClientRequest);
    for (const text of ['', '{', '[]', '1', 'null', '"x"', '{}', '{"op":"1"}', '{"op":1.5}', '{"op":null}', '{"op":1} x']) {
      expect(decodeFrame(new TextEncoder().encode(text), 'json'), text).toEqual(close(4002));
    }
    expect(decodeFrame(bytes(0x7b, 0xff, 0x7d), 'json')).toEqual(close(4002));
    expect(decodeFrame(json({ op: 1, d: null }), 'msgpack')).toEqual(close(4002));
    for (const op of [0, 10, 11, 12, 3, 99, -1]) expect(decode({ op }), String(op)).toEqual(close(4001));
  });

  it('closes with 4002 above 4096 bytes and accepts 4096', () => {
    const sized = (size: number) => {
      const base = JSON.stringify({ op: 1, p: '' });
      return new TextEncoder().encode(JSON.stringify({ op: 1, p: 'x'.repeat(size - base.length) }));
    };
    expect(decodeFrame(sized(4096), 'json')).toEqual({ kind: 'heartbeat' });
    expect(decodeFrame(sized(4097), 'json')).toEqual({ kind: 'close', code: 4002 });
  });

  it('reads heartbeats and IDENTIFY', () => {
    expect(decode({ op: 1, d: null })).toEqual({ kind: 'heartbeat' });
    expect(decode({ op: 1 }, 'msgpack')).toEqual({ kind: 'heartbeat' });
    expect(decode({ op: 1, d: 'x' })).toEqual({ kind: 'invalid', op: 1, nonce: undefined });
    expect(decode({ op: 2, d: { token: 'abc' } })).toEqual({ kind: 'identify', token: 'abc' });
    for (const d of [null, {}, { token: 5 }, { token: '' }, 'abc']) expect(decode({ op: 2, d })).toEqual({ kind: 'identify', token: null });
  });

  it('reads MESSAGE_CREATE and MESSAGE_ACK with canonical ids', () => {
    expect(decode({ op: 20, d: { channel_id: '0012', mentions: ['7', '007'], mention_everyone: true, nonce: 'n' } }, 'msgpack')).toEqual({
      kind: 'create',
      channelId: '12',
      mentions: ['7', '7'],
      mentionEveryone: true,
      nonce: 'n',
    });
    expect(decode({ op: 20, d: { channel_id: '18446744073709551615', mentions: null, mention_everyone: null, nonce: null } })).toEqual({
      kind: 'create',
      channelId: '18446744073709551615',
      mentions: [],
      mentionEveryone: false,
      nonce: undefined,
    });
    expect(decode({ op: 21, d: { channel_id: '1', message_id: '2', nonce: -5 } })).toEqual({ kind: 'ack', channelId: '1', messageId: '2', nonce: -5 });
  });

  it('answers ill-formed bodies with 50035, keeping a well-formed nonce only', () => {
    const invalid = (op: number, nonce?: string | number) => ({ kind: 'invalid', op, nonce });
    expect(decode({ op: 20, d: { channel_id: 1, nonce: 'k' } })).toEqual(invalid(20, 'k'));
    expect(decode({ op: 20, d: { channel_id: '18446744073709551616', nonce: 7 } })).toEqual(invalid(20, 7));
    expect(decode({ op: 20, d: { channel_id: '1', mentions: ['x'], nonce: 7 } })).toEqual(invalid(20, 7));
    expect(decode({ op: 20, d: { channel_id: '1', mention_everyone: 1, nonce: 7 } })).toEqual(invalid(20, 7));
    expect(decode({ op: 21, d: { channel_id: '1', nonce: 7 } })).toEqual(invalid(21, 7));
    expect(decode({ op: 21, d: [] })).toEqual(invalid(21));
    for (const nonce of ['x'.repeat(65), '😀'.repeat(65), 1.5, 2 ** 53, true, {}, [], '\ud800']) {
      expect(decode({ op: 21, d: { channel_id: '1', message_id: '2', nonce } }), JSON.stringify(nonce)).toEqual(invalid(21));
    }
    expect(decode({ op: 21, d: { channel_id: '1', message_id: '2', nonce: '😀'.repeat(64) } })).toMatchObject({ kind: 'ack', nonce: '😀'.repeat(64) });
  });
});

describe('canonicalSnowflake', () => {
  it('accepts 1 to 20 digits up to 2^64 - 1 and strips leading zeros', () => {
    expect(canonicalSnowflake('0')).toBe('0');
    expect(canonicalSnowflake('000')).toBe('0');
    expect(canonicalSnowflake('09007199254740993')).toBe('9007199254740993');
    expect(canonicalSnowflake('18446744073709551615')).toBe('18446744073709551615');
    for (const bad of ['', '18446744073709551616', '1'.repeat(21), '-1', '1e3', ' 1', 12, null, ['1']]) expect(canonicalSnowflake(bad)).toBeNull();
  });
});

/** A JSON frame as text, whether it was built as a string or as bytes. */
const text = (frame: string | Uint8Array) => (typeof frame === 'string' ? frame : new TextDecoder().decode(frame));

describe('server frames', () => {
  const state = { channel_id: '18446744073709551615', last_message_id: '9007199254740993', last_acked_id: null, unread_count: 3, mention_count: 1 };

  it('writes READ_STATE_UPDATE once per encoding, with the sequence and an optional nonce', () => {
    const update = PreparedReadState.ofState(state);
    expect(JSON.parse(text(update.frame('json', 7, undefined)))).toEqual({ op: 0, t: 'READ_STATE_UPDATE', s: 7, d: state });
    expect(JSON.parse(text(update.frame('json', 8, 'n"1')))).toEqual({ op: 0, t: 'READ_STATE_UPDATE', s: 8, d: { ...state, nonce: 'n"1' } });
    expect(unpackr.unpack(update.frame('msgpack', 9, undefined) as Uint8Array)).toEqual({ op: 0, t: 'READ_STATE_UPDATE', s: 9, d: state });
    expect(unpackr.unpack(update.frame('msgpack', 2 ** 40, -3) as Uint8Array)).toEqual({ op: 0, t: 'READ_STATE_UPDATE', s: 2 ** 40, d: { ...state, nonce: -3 } });
  });

  it('writes a JSON READ_STATE_UPDATE as bytes with the very text of JSON.stringify, nonce or none', () => {
    const id = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String);
    // A message id is never 0: the engine's (0, 0) is "none" (null).
    const messageId = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }).map(String);
    // Nonces as the codec accepts them: up to 64 code points (any, quotes and controls included), or a safe integer.
    const nonce = fc.option(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 64 }).filter((n) => [...n].length <= 64), fc.string({ unit: 'binary', maxLength: 64 }).filter((n) => !/\p{Surrogate}/u.test(n)), fc.maxSafeInteger()), { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({ channel_id: id, last_message_id: fc.option(messageId, { nil: null }), last_acked_id: fc.option(messageId, { nil: null }), unread_count: fc.nat(), mention_count: fc.integer() }),
        fc.maxSafeInteger(),
        nonce,
        (drawn, sequence, n) => {
          const s = Math.abs(sequence);
          const d = n === undefined ? drawn : { ...drawn, nonce: n };
          expect(text(PreparedReadState.ofState(drawn).frame('json', s, n))).toBe(JSON.stringify({ op: 0, t: 'READ_STATE_UPDATE', s, d }));
        },
      ),
    );
  });

  it('writes HELLO, ERROR and other dispatches in both encodings', () => {
    expect(JSON.parse(encodeHello('json', 41250) as string)).toEqual({ op: 10, d: { heartbeat_interval: 41250 } });
    expect(unpackr.unpack(encodeHello('msgpack', 41250) as Uint8Array)).toEqual({ op: 10, d: { heartbeat_interval: 41250 } });
    expect(unpackr.unpack(encodeError('msgpack', 10008, 'x') as Uint8Array)).toEqual({ op: 12, d: { code: 10008, message: 'Unknown Message', nonce: 'x' } });
    expect(JSON.parse(encodeError('json', 50035, undefined) as string)).toEqual({ op: 12, d: { code: 50035, message: 'Invalid Form Body' } });
    expect(unpackr.unpack(encodeDispatch('msgpack', 'READ_STATE_DELETE', { channel_id: '5' }, 3) as Uint8Array)).toEqual({ op: 0, t: 'READ_STATE_DELETE', s: 3, d: { channel_id: '5' } });
  });
});
