// docs/protocol.md "Connection", "Opcodes", "Session", "Errors", "Close codes", over real sockets
// against the compiled gateway and a real Cassandra node.

import { SignJWT } from 'jose';
import { pack, unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/client/gateway-client.js';
import { connectNode } from '../../src/client/node-socket.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import {
  AdminApi,
  byChannel,
  connectUser,
  E2E_JWT_SECRET,
  type GatewayProcess,
  RawSocket,
  randomSnowflake,
  sleep,
  startGateway,
  userToken,
} from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_protocol');
const HEARTBEAT_INTERVAL = 30_000;
let gateway: GatewayProcess;
let api: AdminApi;

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL), GATEWAY_RATE_LIMIT: '100000' });
  api = new AdminApi(gateway.httpUrl);
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

/** An unidentified raw socket on the gateway, with HELLO received. */
async function raw(encoding?: 'json' | 'msgpack'): Promise<RawSocket> {
  const socket = new RawSocket(encoding === undefined ? gateway.wsUrl : `${gateway.wsUrl}?encoding=${encoding}`);
  await socket.waitFrames(1);
  return socket;
}

/** Sends one frame and resolves with the close code it earns. */
async function closeCodeOf(frame: string | Uint8Array, encoding: 'json' | 'msgpack' = 'json', binary?: boolean): Promise<number> {
  const socket = await raw(encoding);
  socket.send(frame, binary);
  return (await socket.closed).code;
}

async function identified(encoding: 'json' | 'msgpack' = 'json') {
  const userId = randomSnowflake();
  const client = await connectUser(gateway, userId, encoding);
  return { userId, client };
}

describe('connection', () => {
  it('sends HELLO first, with heartbeat_interval and no s or t, as a text frame by default', async () => {
    const socket = await raw();
    expect(socket.frames[0].binary).toBe(false);
    expect(JSON.parse(socket.frames[0].data.toString())).toEqual({ op: 10, d: { heartbeat_interval: HEARTBEAT_INTERVAL } });
    socket.close();
  });

  it('speaks standard MessagePack in binary frames with encoding=msgpack', async () => {
    const socket = await raw('msgpack');
    expect(socket.frames[0].binary).toBe(true);
    expect(unpack(socket.frames[0].data)).toEqual({ op: 10, d: { heartbeat_interval: HEARTBEAT_INTERVAL } });
    socket.send(pack({ op: 1, d: null }));
    await socket.waitFrames(2);
    expect(unpack(socket.frames[1].data)).toEqual({ op: 11, d: null });
    socket.close();
  });

  it('refuses an unknown encoding with 400 before upgrading', async () => {
    for (const encoding of ['xml', 'JSON', '', 'etf']) {
      const socket = new RawSocket(`${gateway.wsUrl}?encoding=${encoding}`);
      expect(await socket.refused).toBe(400);
    }
  });

  it('decodes every frame with the session encoding, whatever the frame type', async () => {
    // JSON in a binary frame on a json session is JSON.
    const json = await raw('json');
    json.send(new TextEncoder().encode('{"op":1,"d":null}'), true);
    await json.waitFrames(2);
    expect(JSON.parse(json.frames[1].data.toString())).toEqual({ op: 11, d: null });
    json.close();
    // JSON text on a msgpack session is read as MessagePack: 0x7b is the integer 123 followed by junk.
    expect(await closeCodeOf('{"op":1,"d":null}', 'msgpack', false)).toBe(4002);
  });
});

describe('identify and READY', () => {
  it('answers IDENTIFY with READY listing one read state per channel of the user, ids above 2^53 exact', async () => {
    const userId = randomSnowflake();
    const other = randomSnowflake();
    const channels = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    for (const channel of channels) {
      await api.join(channel, userId);
      await api.join(channel, other);
    }
    const foreign = randomSnowflake();
    await api.join(foreign, other);
    const m1 = await api.post(channels[0], other, { mentions: [userId] });
    const m2 = await api.post(channels[0], other);
    await api.post(foreign, other);

    const client = await connectNode(gateway.wsUrl, { keepReceived: true });
    const ready = await client.identify(await userToken(userId));
    expect(ready.v).toBe(2);
    expect(ready.user).toEqual({ id: userId });
    expect(ready.session_id).toMatch(/^[0-9a-f]{32}$/);
    expect(byChannel(ready.read_states)).toEqual(
      byChannel([
        { channel_id: channels[0], last_message_id: m2, last_acked_id: null, unread_count: 2, mention_count: 1 },
        { channel_id: channels[1], last_message_id: null, last_acked_id: null, unread_count: 0, mention_count: 0 },
        { channel_id: channels[2], last_message_id: null, last_acked_id: null, unread_count: 0, mention_count: 0 },
      ]),
    );
    expect(BigInt(m2) > BigInt(m1)).toBe(true);
    const readyPayload = client.received.find((p) => p.t === 'READY');
    expect(readyPayload).toMatchObject({ op: 0, s: 1 });
    await client.close();
  });

  it('gives every session of a user its own session id and sequence', async () => {
    const userId = randomSnowflake();
    const a = await connectUser(gateway, userId);
    const b = await connectUser(gateway, userId, 'msgpack');
    expect(a.ready!.session_id).not.toBe(b.ready!.session_id);
    expect(a.lastSequence).toBe(1);
    expect(b.lastSequence).toBe(1);
    await a.close();
    await b.close();
  });

  it('closes with 4004 when authentication fails', async () => {
    const key = new TextEncoder().encode(E2E_JWT_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>, secret = key) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: '1', exp: now + 60 })).toString('base64url')}.`;
    const bad: unknown[] = [
      {},
      null,
      { token: '' },
      { token: 42 },
      { token: 'not.a.jwt' },
      { token: await sign({ sub: '1', exp: now + 60 }, new TextEncoder().encode('another-secret')) },
      { token: await sign({ sub: '1', exp: now - 10 }) },
      { token: await sign({ sub: '1' }) },
      { token: await sign({ exp: now + 60 }) },
      { token: await sign({ sub: 'alice', exp: now + 60 }) },
      { token: await sign({ sub: '18446744073709551616', exp: now + 60 }) },
      { token: unsigned },
    ];
    for (const d of bad) expect(await closeCodeOf(JSON.stringify({ op: 2, d }))).toBe(4004);
  });

  it('accepts a token whose sub has leading zeros and reports the canonical id', async () => {
    const client = await connectNode(gateway.wsUrl);
    const ready = await client.identify(await userToken('000123'));
    expect(ready.user.id).toBe('123');
    await client.close();
  });

  it('closes with 4005 on a second IDENTIFY', async () => {
    const { userId, client } = await identified();
    client.send({ op: 2, d: { token: await userToken(userId) } });
    expect((await client.closed).code).toBe(4005);
  });

  it('closes with 4005 on a second IDENTIFY sent before READY', async () => {
    const socket = await raw();
    const token = await userToken(randomSnowflake());
    socket.send(JSON.stringify({ op: 2, d: { token } }));
    socket.send(JSON.stringify({ op: 2, d: { token } }));
    expect((await socket.closed).code).toBe(4005);
    expect(socket.json().map((p) => p.t ?? p.op)).toEqual([10, 'READY']);
  });

  it('closes with 4003 on a request before IDENTIFY, even an ill-formed one', async () => {
    expect(await closeCodeOf(JSON.stringify({ op: 20, d: { channel_id: '1' } }))).toBe(4003);
    expect(await closeCodeOf(JSON.stringify({ op: 21, d: { channel_id: '1', message_id: '2' } }))).toBe(4003);
    expect(await closeCodeOf(JSON.stringify({ op: 21, d: 'junk' }))).toBe(4003);
  });

  it('acknowledges heartbeats before IDENTIFY', async () => {
    const socket = await raw();
    socket.send(JSON.stringify({ op: 1, d: null }));
    socket.send(JSON.stringify({ op: 1 }));
    socket.send(JSON.stringify({ op: 1, d: 7 }));
    await socket.waitFrames(4);
    expect(socket.json().slice(1)).toEqual([
      { op: 11, d: null },
      { op: 11, d: null },
      { op: 11, d: null },
    ]);
    socket.close();
  });

  it('closes with 4009 when no IDENTIFY arrives within 10 s, and not before', async () => {
    const socket = await raw();
    const started = Date.now();
    const { code } = await socket.closed;
    expect(code).toBe(4009);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
  }, 20_000);
});

describe('opcodes and decoding', () => {
  it('closes with 4001 for opcodes clients may not send and unknown ones', async () => {
    for (const op of [0, 10, 11, 12, 3, 22, 99, -1, 2 ** 40]) expect(await closeCodeOf(JSON.stringify({ op, d: null }))).toBe(4001);
    expect(await closeCodeOf(pack({ op: 11, d: null }), 'msgpack')).toBe(4001);
  });

  it('closes with 4002 for payloads that cannot be decoded (json)', async () => {
    const frames = ['{', 'nul', '[]', '"op"', '42', 'null', '{}', '{"op":"1"}', '{"op":1.5}', '{"op":null}', '{"op":true}', '{"d":null}', '{"op":1}{"op":1}'];
    for (const frame of frames) expect(await closeCodeOf(frame)).toBe(4002);
    // Not UTF-8, in a binary frame (a text frame would be refused by the WebSocket layer).
    expect(await closeCodeOf(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 'json', true)).toBe(4002);
  });

  it('closes with 4002 for payloads that cannot be decoded (msgpack), extensions included', async () => {
    const frames: number[][] = [
      [0xc1],
      [0x81, 0xa2, 0x6f, 0x70, 0xc1],
      // fixext 1, type 5
      [0x81, 0xa2, 0x6f, 0x70, 0xd4, 0x05, 0x01],
      // timestamp 32 (ext -1)
      [0x81, 0xa2, 0x6f, 0x70, 0x01, 0xa1, 0x64, 0xd6, 0xff, 0, 0, 0, 1],
      // ext 8
      [0x81, 0xa2, 0x6f, 0x70, 0x01, 0xa1, 0x64, 0xc7, 0x01, 0x02, 0x00],
      // truncated map, trailing bytes, an array, a string, nil
      [0x82, 0xa2, 0x6f, 0x70, 0x01],
      [0x81, 0xa2, 0x6f, 0x70, 0x01, 0x00],
      [0x91, 0x01],
      [0xa2, 0x6f, 0x70],
      [0xc0],
      // {op: "1"}, {op: 1.5}
      [0x81, 0xa2, 0x6f, 0x70, 0xa1, 0x31],
      [0x81, 0xa2, 0x6f, 0x70, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
      // array32 claiming 2^32-1 elements
      [0x81, 0xa2, 0x6f, 0x70, 0xdd, 0xff, 0xff, 0xff, 0xff],
      // invalid UTF-8 in a key
      [0x81, 0xa2, 0xff, 0xfe, 0x01],
    ];
    for (const frame of frames) expect(await closeCodeOf(new Uint8Array(frame), 'msgpack')).toBe(4002);
  });

  it('accepts a payload of exactly 4096 bytes and closes with 4002 above it', async () => {
    const padded = (size: number) => {
      const base = '{"op":1,"d":null,"pad":""}';
      return `{"op":1,"d":null,"pad":"${'x'.repeat(size - base.length)}"}`;
    };
    const socket = await raw();
    socket.send(padded(4096));
    await socket.waitFrames(2);
    expect(socket.json()[1]).toEqual({ op: 11, d: null });
    socket.send(padded(4097));
    expect((await socket.closed).code).toBe(4002);
    expect(await closeCodeOf(padded(15_000))).toBe(4002);
    // A MessagePack payload over the limit too.
    expect(await closeCodeOf(pack({ op: 1, d: null, pad: 'x'.repeat(5000) }), 'msgpack')).toBe(4002);
  });

  it('closes frames beyond the transport limit (16 KiB) without harming the process', async () => {
    const socket = await raw();
    socket.send('x'.repeat(64 * 1024));
    const { code } = await socket.closed;
    expect([1006, 1009, 4002]).toContain(code);
    expect((await fetch(`${gateway.httpUrl}/healthz`)).status).toBe(200);
  });
});

describe('errors keep the session open', () => {
  it('answers ill-formed bodies with 50035, echoing a well-formed nonce', async () => {
    const { client } = await identified();
    const channel = randomSnowflake();
    const bodies: Array<[number, unknown]> = [
      [20, {}],
      [20, { channel_id: 123 }],
      [20, { channel_id: '' }],
      [20, { channel_id: '12a' }],
      [20, { channel_id: '-1' }],
      [20, { channel_id: '1'.repeat(21) }],
      [20, { channel_id: '18446744073709551616' }],
      [20, { channel_id: channel, mentions: 'x' }],
      [20, { channel_id: channel, mentions: [1] }],
      [20, { channel_id: channel, mentions: ['99999999999999999999'] }],
      [20, { channel_id: channel, mention_everyone: 'yes' }],
      [21, { channel_id: channel }],
      [21, { channel_id: channel, message_id: 5 }],
      [21, { message_id: '5' }],
    ];
    let nonce = 1000;
    for (const [op, d] of bodies) {
      const sent = nonce++;
      client.send({ op, d: { ...(d as object), nonce: sent } });
      const error = await client.waitFor((p) => p.op === 12);
      expect(error.d).toEqual({ code: 50035, message: 'Invalid Form Body', nonce: sent });
    }
    for (const d of [null, [], 'x', 5]) {
      client.send({ op: 20, d });
      expect((await client.waitFor((p) => p.op === 12)).d).toEqual({ code: 50035, message: 'Invalid Form Body' });
    }
    client.heartbeat();
    expect((await client.waitFor((p) => p.op === 11)).op).toBe(11);
    expect(client.isClosed).toBe(false);
    await client.close();
  });

  it.each(['json', 'msgpack'] as const)('answers an ill-formed nonce with 50035 without the nonce, and echoes every well-formed one (%s)', async (encoding) => {
    const { userId, client } = await identified(encoding);
    const channel = randomSnowflake();
    await api.join(channel, userId);
    const message = await api.post(channel, userId);
    // A lone surrogate can be sent in JSON only (MessagePack strings are UTF-8).
    const loneSurrogate = encoding === 'json' ? ['\ud800'] : [];
    for (const nonce of ['x'.repeat(65), '😀'.repeat(65), 1.5, 2 ** 53, -(2 ** 53), { a: 1 }, [1], true, ...loneSurrogate]) {
      client.send({ op: 21, d: { channel_id: channel, message_id: message, nonce } });
      expect((await client.waitFor((p) => p.op === 12)).d).toEqual({ code: 50035, message: 'Invalid Form Body' });
    }
    for (const nonce of ['😀'.repeat(64), 'x'.repeat(64), '', 0, 2 ** 53 - 1, -(2 ** 53 - 1)]) {
      client.send({ op: 21, d: { channel_id: channel, message_id: message, nonce } });
      const update = await client.waitFor((p) => p.t === 'READ_STATE_UPDATE');
      expect((update.d as { nonce: unknown }).nonce).toEqual(nonce);
    }
    await client.close();
  });

  it('answers a heartbeat with an ill-typed d with 50035', async () => {
    const socket = await raw();
    socket.send(JSON.stringify({ op: 1, d: 'x' }));
    await socket.waitFrames(2);
    expect(socket.json()[1]).toEqual({ op: 12, d: { code: 50035, message: 'Invalid Form Body' } });
    socket.close();
  });

  it('answers 10003, 10008 and 50001 with the nonce and carries on', async () => {
    const { userId, client } = await identified();
    const channel = randomSnowflake();
    const empty = randomSnowflake();
    const foreign = randomSnowflake();
    const stranger = randomSnowflake();
    await api.join(channel, userId);
    await api.join(empty, userId);
    await api.join(foreign, stranger);
    const message = await api.post(channel, userId);
    const newer = (BigInt(message) + 1n).toString();
    const expectError = async (request: Promise<unknown>, code: number) => {
      const error = await request.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).code).toBe(code);
    };
    await expectError(client.createMessage({ channel_id: randomSnowflake() }), 10003);
    await expectError(client.ack(randomSnowflake(), message), 10003);
    await expectError(client.ack(channel, newer), 10008);
    await expectError(client.ack(empty, message), 10008);
    await expectError(client.createMessage({ channel_id: foreign }), 50001);
    await expectError(client.ack(foreign, message), 50001);
    expect((await client.ack(channel, message)).unread_count).toBe(0);
    await client.close();
  });
});

describe('snowflakes', () => {
  it('accepts leading zeros and the largest id, answers in canonical form', async () => {
    const { userId, client } = await identified();
    const channel = randomSnowflake();
    await api.join(channel, userId);
    const message = await api.post(channel, userId);
    // Both ids have 19 digits: one leading zero keeps them within 20.
    const state = await client.ack(`0${channel}`, `0${message}`);
    expect(state.channel_id).toBe(channel);
    expect(state.last_acked_id).toBe(message);
    await expect(client.ack('18446744073709551615', '18446744073709551615')).rejects.toMatchObject({ code: 10003 });
    await expect(client.ack(`00${channel}`, message)).rejects.toMatchObject({ code: 50035 });
    await client.close();
  });
});

describe('limits', () => {
  it('closes with 4008 past GATEWAY_RATE_LIMIT payloads in the window, heartbeats included', async () => {
    const limited = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_RATE_LIMIT: '10', GATEWAY_RATE_WINDOW_MS: '60000' });
    try {
      const socket = new RawSocket(limited.wsUrl);
      await socket.waitFrames(1);
      for (let i = 0; i < 10; i++) socket.send(JSON.stringify({ op: 1, d: null }));
      await socket.waitFrames(11);
      expect(socket.json().slice(1).every((p) => p.op === 11)).toBe(true);
      socket.send(JSON.stringify({ op: 1, d: null }));
      expect((await socket.closed).code).toBe(4008);
      expect(socket.frames).toHaveLength(11);
      // Another session has its own budget.
      const fresh = new RawSocket(limited.wsUrl);
      await fresh.waitFrames(1);
      fresh.send(JSON.stringify({ op: 1, d: null }));
      await fresh.waitFrames(2);
      fresh.close();
    } finally {
      expect(await limited.stop()).toBe(0);
    }
  });

  it('closes with 4009 when heartbeats stop for 1.5 x the interval, and keeps a heartbeating session', async () => {
    const quick = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_HEARTBEAT_INTERVAL_MS: '1000' });
    try {
      const silent = await connectNode(quick.wsUrl, { heartbeats: false });
      await silent.identify(await userToken(randomSnowflake()));
      const alive = await connectNode(quick.wsUrl);
      await alive.identify(await userToken(randomSnowflake()));
      const started = Date.now();
      expect((await silent.closed).code).toBe(4009);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      await sleep(2500);
      expect(alive.isClosed).toBe(false);
      await alive.close();
    } finally {
      expect(await quick.stop()).toBe(0);
    }
  });
});
