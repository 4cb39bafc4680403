// Hostile input: over 100,000 malformed or random frames (random bytes, JSON and MessagePack
// of wrong shapes, huge arrays, deep nesting, wrong types, ids out of range, floods of
// RESUMEs for sessions that are not the sender's) over many connections. The process stays up, each frame gets its specified answer, a well-behaved
// client alongside keeps working, no fuzzer touches another user's read states, and the
// heap returns to its baseline once the fuzzers are gone.

import { randomBytes } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadState } from '../../src/client/gateway-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import {
  AdminApi,
  byChannel,
  connectUser,
  type GatewayProcess,
  metricValue,
  RawSocket,
  randomSnowflake,
  sleep,
  startGateway,
  userToken,
} from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_fuzz');
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

const OPEN_SESSIONS = Number(process.env.FUZZ_SESSIONS ?? 40);
const FRAMES_PER_SESSION = 2_400; // 96,000 on identified sessions
const CLOSING_FRAMES = Number(process.env.FUZZ_CLOSING ?? 6_000); // one fresh connection each
const RESUME_ATTEMPTS = Number(process.env.FUZZ_RESUMES ?? 3_000); // up to 20 on each connection
const IN_FLIGHT = 100;

let gateway: GatewayProcess;
let api: AdminApi;

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_RATE_LIMIT: '1000000000' }, { inspect: true });
  api = new AdminApi(gateway.httpUrl);
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

// ---- Random values ------------------------------------------------------------------------

/** Seeded, so a failing run can be replayed (the seed is in the test name). */
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
let state = SEED >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];

function deepArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function deepObject(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Any JSON-like value (never undefined: msgpackr would write it as an extension). */
function junk(depth = 0): unknown {
  switch (int(depth > 2 ? 7 : 10)) {
    case 0:
      return int(2 ** 31) - 2 ** 30;
    case 1:
      return pick([2 ** 53, 2 ** 60, -(2 ** 60), 1.5, -0.25, 1e300, Number.MAX_SAFE_INTEGER]);
    case 2:
      return pick(['', 'x', '123abc', '😀'.repeat(int(20)), 'a'.repeat(int(300)), '\u0000', '18446744073709551616']);
    case 3:
      return random() < 0.5;
    case 4:
      return null;
    case 5:
      return deepArray(1 + int(300));
    case 6:
      return deepObject(1 + int(100));
    case 7:
      return Array.from({ length: int(6) }, () => junk(depth + 1));
    case 8:
      return Object.fromEntries(Array.from({ length: int(5) }, (_, i) => [`k${i}`, junk(depth + 1)]));
    default:
      return Array.from({ length: 50 + int(300) }, () => int(1000));
  }
}

/** A value that is never a valid snowflake. */
function badSnowflake(): unknown {
  return pick<unknown>([
    123,
    2 ** 60,
    1.5,
    true,
    null,
    [],
    {},
    '',
    '-1',
    '+1',
    ' 1',
    '1 ',
    '1e5',
    '0x1f',
    '١٢٣',
    '1'.repeat(21),
    '18446744073709551616',
    '99999999999999999999',
    `${randomSnowflake()}x`,
    deepArray(50),
    ['123'],
  ]);
}

/** A value that is never a valid nonce (null and absent are valid: no nonce). */
function badNonce(): unknown {
  return pick<unknown>(['x'.repeat(65), '😀'.repeat(65), 1.5, 2 ** 53, -(2 ** 53), 1e300, true, false, {}, [1], deepArray(20)]);
}

let nonceCounter = 0;
function goodNonce(): string | number {
  const n = ++nonceCounter;
  return pick([() => n, () => -n, () => `n${n}`, () => `${'😀'.repeat(int(50))}${n}`.slice(0, 60)])();
}

// ---- Frames with their expected answers ---------------------------------------------------------

type Expected = { kind: 'error'; code: number; nonce?: string | number } | { kind: 'update'; nonce: string | number } | { kind: 'heartbeat-ack' };

interface FuzzUser {
  userId: string;
  channel: string;
  message: string;
}

interface World {
  /** A channel the fuzz users are not members of, with a message. */
  foreignChannel: string;
  foreignMessage: string;
}

/** One payload for an identified session, and what the gateway must answer. */
function sessionFrame(user: FuzzUser, world: World): { payload: unknown; expected: Expected } {
  const nonce = goodNonce();
  const withExtra = (d: Record<string, unknown>) => (random() < 0.2 ? { ...d, extra: junk() } : d);
  switch (int(14)) {
    case 0:
      return { payload: { op: 1, d: pick([null, int(1000)]), junk: junk() }, expected: { kind: 'heartbeat-ack' } };
    case 1:
      return { payload: { op: 1, d: pick<unknown>(['x', -1, 1.5, {}, [], true, deepArray(30)]) }, expected: { kind: 'error', code: 50035 } };
    case 2:
      return { payload: { op: 20, d: withExtra({ channel_id: badSnowflake(), nonce }) }, expected: { kind: 'error', code: 50035, nonce } };
    case 3: {
      const mentions = Array.from({ length: int(100) }, () => randomSnowflake());
      mentions.splice(int(mentions.length + 1), 0, badSnowflake() as string);
      return { payload: { op: 20, d: { channel_id: user.channel, mentions, nonce } }, expected: { kind: 'error', code: 50035, nonce } };
    }
    case 4:
      return {
        payload: { op: 20, d: { channel_id: user.channel, mentions: pick<unknown>(['x', 5, {}, true, deepObject(10)]), nonce } },
        expected: { kind: 'error', code: 50035, nonce },
      };
    case 5:
      return { payload: { op: 20, d: { channel_id: user.channel, mention_everyone: pick<unknown>(['true', 1, 0, [], {}]), nonce } }, expected: { kind: 'error', code: 50035, nonce } };
    case 6:
      return { payload: { op: pick([20, 21]), d: withExtra({ channel_id: user.channel, message_id: user.message, nonce: badNonce() }) }, expected: { kind: 'error', code: 50035 } };
    case 7:
      return { payload: { op: pick([20, 21]), d: pick<unknown>([null, 5, 'x', [], [user.channel], deepArray(100)]) }, expected: { kind: 'error', code: 50035 } };
    case 8:
      return { payload: { op: 21, d: withExtra({ channel_id: user.channel, message_id: badSnowflake(), nonce }) }, expected: { kind: 'error', code: 50035, nonce } };
    case 9:
      return { payload: { op: pick([20, 21]), d: { channel_id: randomSnowflake(), message_id: user.message, nonce } }, expected: { kind: 'error', code: 10003, nonce } };
    case 10:
      return {
        payload: { op: pick([20, 21]), d: { channel_id: world.foreignChannel, message_id: world.foreignMessage, mentions: [user.userId], nonce } },
        expected: { kind: 'error', code: 50001, nonce },
      };
    case 11:
      return {
        // Far beyond any message the channel will ever get (2^63 ms-ids are centuries away).
        payload: { op: 21, d: { channel_id: user.channel, message_id: ((1n << 63n) + BigInt(int(1e9))).toString(), nonce } },
        expected: { kind: 'error', code: 10008, nonce },
      };
    case 12:
      return { payload: { op: 21, d: withExtra({ channel_id: user.channel, message_id: user.message, nonce }) }, expected: { kind: 'update', nonce } };
    default:
      // Mentions of strangers (non-members) are ignored: the message is created. (Few of them:
      // each stranger costs the engine a store read to learn it is not a member.)
      return {
        payload: { op: 20, d: { channel_id: user.channel, mentions: Array.from({ length: int(4) }, () => randomSnowflake()), mention_everyone: random() < 0.5, nonce } },
        expected: { kind: 'update', nonce },
      };
  }
}

/** Would this payload decode to a map with an integer op? (Then it is not a 4002 case.) */
function decodesToOp(frame: Uint8Array, encoding: 'json' | 'msgpack'): boolean {
  let value: unknown;
  try {
    value = encoding === 'json' ? JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame)) : unpackr.unpack(frame);
  } catch {
    return false;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Number.isInteger((value as { op?: unknown }).op);
}

const EXTENSIONS = [
  [0xd4, 0x01, 0x00],
  [0xd5, 0x02, 0x00, 0x00],
  [0xd6, 0xff, 0x00, 0x00, 0x00, 0x01],
  [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
  [0xd8, 0x05, ...new Array<number>(16).fill(0)],
  [0xc7, 0x01, 0x07, 0x00],
  [0xc8, 0x00, 0x01, 0x07, 0x00],
  [0xc9, 0x00, 0x00, 0x00, 0x01, 0x07, 0x00],
  [0xc1],
];

/** A frame for a fresh, unidentified connection, and the close code it must earn. */
function closingFrame(): { encoding: 'json' | 'msgpack'; frame: string | Uint8Array; binary: boolean; code: number } {
  const encoding = random() < 0.5 ? 'json' : 'msgpack';
  const encode = (value: unknown) => (encoding === 'json' ? JSON.stringify(value) : packr.pack(value));
  const binary = encoding === 'msgpack';
  switch (int(9)) {
    case 0: {
      // Random bytes, always binary (a text frame must be UTF-8 at the WebSocket layer).
      let bytes: Uint8Array;
      do bytes = randomBytes(1 + int(200));
      while (decodesToOp(bytes, encoding));
      return { encoding, frame: bytes, binary: true, code: 4002 };
    }
    case 1:
      return { encoding, frame: encode(pick<unknown>([5, 'x', [1, 2], null, true, [], deepArray(200), Array.from({ length: 500 }, () => 1)])), binary, code: 4002 };
    case 2:
      return { encoding, frame: encode({ op: pick<unknown>(['1', 1.5, null, true, [], {}, '20']), d: junk() }), binary, code: 4002 };
    case 3:
      return { encoding, frame: encode({ op: pick([0, 10, 11, 12, 3, 13, 19, 22, 255, 65536, -5]), d: junk() }), binary, code: 4001 };
    case 4: {
      // A valid map with an extension (or 0xc1) as the value of d.
      const head = [0x82, 0xa2, 0x6f, 0x70, 0x01, 0xa1, 0x64];
      return { encoding: 'msgpack', frame: new Uint8Array([...head, ...pick(EXTENSIONS)]), binary: true, code: 4002 };
    }
    case 5:
      return { encoding, frame: encode({ op: 1, d: null, pad: 'x'.repeat(4097 + int(8000)) }), binary, code: 4002 };
    case 6:
      return { encoding, frame: encode({ op: pick([20, 21]), d: junk() }), binary, code: 4003 };
    case 7:
      return { encoding, frame: encode({ op: pick([2, 6]), d: pick<unknown>([null, {}, { token: 5 }, { token: 'x.y.z' }, { token: '' }, junk()]) }), binary, code: 4004 };
    default:
      // RESUME with a forged token: refused as IDENTIFY is, whatever the rest says.
      return { encoding, frame: encode({ op: 6, d: { token: pick(['x.y.z', 'a'.repeat(200)]), session_id: junk(), seq: junk() } }), binary, code: 4004 };
  }
}

/** A session that RESUME floods name but must never reach. */
interface Victim {
  sessionId: string;
  lastSequence: number;
}

/** RESUME data that cannot be honoured for whoever sends it: another user's session, a forged or ill-typed id or seq. */
function hostileResume(victim: Victim): Record<string, unknown> {
  const sessionId = pick<unknown>([
    victim.sessionId,
    victim.sessionId.toUpperCase(),
    randomBytes(16).toString('hex'),
    randomBytes(15).toString('hex'),
    '',
    5,
    null,
    junk(),
  ]);
  const seq = pick<unknown>([victim.lastSequence, 0, 1, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, -1, 1.5, '3', null, [], junk()]);
  return { session_id: sessionId, seq };
}

/**
 * Bursts of RESUMEs from other users on fresh connections: each is INVALID_SESSION with the
 * socket left open, and IDENTIFY still works afterwards. Returns the RESUMEs answered.
 */
async function fuzzResume(victim: Victim, count: number): Promise<number> {
  let done = 0;
  const worker = async () => {
    while (done < count) {
      const encoding = random() < 0.5 ? 'json' : 'msgpack';
      const encode = (value: unknown) => (encoding === 'json' ? JSON.stringify(value) : packr.pack(value));
      const decode = (data: Buffer) => (encoding === 'json' ? JSON.parse(data.toString()) : unpackr.unpack(data)) as { op: number; t?: string; d: unknown };
      const socket = new RawSocket(`${gateway.wsUrl}?encoding=${encoding}`);
      await socket.waitFrames(1, 30_000);
      const attacker = randomSnowflake();
      const token = await userToken(attacker);
      const burst = 1 + int(20);
      done += burst;
      for (let i = 0; i < burst; i++) {
        let frame = encode({ op: 6, d: { token, ...hostileResume(victim) } });
        while (Buffer.byteLength(frame) > 4096) frame = encode({ op: 6, d: { token, ...hostileResume(victim) } });
        socket.send(frame, encoding === 'msgpack');
      }
      await socket.waitFrames(1 + burst, 30_000);
      for (const { data } of socket.frames.slice(1)) expect(decode(data)).toMatchObject({ op: 9, d: false });
      socket.send(encode({ op: 2, d: { token } }), encoding === 'msgpack');
      await socket.waitFrames(2 + burst, 30_000);
      expect(decode(socket.frames[1 + burst].data)).toMatchObject({ op: 0, t: 'READY', d: { user: { id: attacker } } });
      socket.close();
      await socket.closed;
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 8 }, worker));
  console.log(`hostile RESUMEs: ${done} in ${Date.now() - started} ms`);
  return done;
}

// ---- Drivers ------------------------------------------------------------------------------

function sameNonce(a: unknown, b: unknown): boolean {
  return a === b;
}

/** Sends FRAMES_PER_SESSION payloads on one identified session, checking every answer in order. */
async function fuzzSession(user: FuzzUser, world: World, encoding: 'json' | 'msgpack'): Promise<number> {
  const socket = new RawSocket(`${gateway.wsUrl}?encoding=${encoding}`);
  await socket.waitFrames(1, 30_000);
  const decode = (data: Buffer) => (encoding === 'json' ? JSON.parse(data.toString()) : unpackr.unpack(data)) as { op: number; t?: string; d: Record<string, unknown> };
  const send = (payload: unknown) => socket.send(encoding === 'json' ? JSON.stringify(payload) : packr.pack(payload), encoding === 'msgpack');
  send({ op: 2, d: { token: await userToken(user.userId) } });
  await socket.waitFrames(2, 30_000);
  expect(decode(socket.frames[1].data).t).toBe('READY');

  const started = Date.now();
  const expected: Expected[] = [];
  let heartbeatsSent = 0;
  let heartbeatAcks = 0;
  let checked = 0;
  let read = 2;
  const drain = () => {
    for (; read < socket.frames.length; read++) {
      const payload = decode(socket.frames[read].data);
      if (payload.op === 11) {
        heartbeatAcks++;
        continue;
      }
      const want = expected.shift();
      if (want === undefined) throw new Error(`unexpected payload ${JSON.stringify(payload)}`);
      if (want.kind === 'error') {
        expect(payload.op, JSON.stringify(payload)).toBe(12);
        expect(payload.d.code).toBe(want.code);
        expect(sameNonce(payload.d.nonce, want.nonce), `nonce ${String(payload.d.nonce)} vs ${String(want.nonce)}`).toBe(true);
      } else if (want.kind === 'update') {
        expect(payload.t, JSON.stringify(payload)).toBe('READ_STATE_UPDATE');
        expect(sameNonce(payload.d.nonce, want.nonce)).toBe(true);
        expect(payload.d.channel_id).toBe(user.channel);
      }
      checked++;
    }
  };
  for (let sent = 0; sent < FRAMES_PER_SESSION; ) {
    while (sent < FRAMES_PER_SESSION && expected.length + (heartbeatsSent - heartbeatAcks) < IN_FLIGHT) {
      let frame = sessionFrame(user, world);
      // Keep these frames within the 4096-byte limit: over it is a closing case, tested apart.
      while ((encoding === 'json' ? Buffer.byteLength(JSON.stringify(frame.payload)) : packr.pack(frame.payload).length) > 4096) frame = sessionFrame(user, world);
      send(frame.payload);
      if (frame.expected.kind === 'heartbeat-ack') heartbeatsSent++;
      else expected.push(frame.expected);
      sent++;
    }
    await new Promise((resolve) => setImmediate(resolve));
    drain();
    if (socket.frames.length === read && expected.length > 0) await sleep(1);
  }
  const deadline = Date.now() + 30_000;
  while ((expected.length > 0 || heartbeatAcks < heartbeatsSent) && Date.now() < deadline) {
    await sleep(5);
    drain();
  }
  expect(expected).toEqual([]);
  expect(heartbeatAcks).toBe(heartbeatsSent);
  console.log(`session ${encoding}: ${FRAMES_PER_SESSION} frames in ${Date.now() - started} ms`);
  socket.close();
  await socket.closed;
  return checked + heartbeatAcks;
}

async function fuzzClosing(count: number): Promise<number> {
  let done = 0;
  const worker = async () => {
    while (done < count) {
      done++;
      const { encoding, frame, binary, code: shapeCode } = closingFrame();
      // Random junk can push any frame over the 4096-byte limit, and size is checked first.
      const code = Buffer.byteLength(frame) > 4096 ? 4002 : shapeCode;
      const socket = new RawSocket(`${gateway.wsUrl}?encoding=${encoding}`);
      // Generous: this machine may be shared with other heavy work.
      await socket.waitFrames(1, 30_000);
      socket.send(frame, binary);
      const closed = await socket.closed;
      expect(closed.code, `frame ${Buffer.from(frame).toString('hex').slice(0, 80)} on ${encoding}`).toBe(code);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 32 }, worker));
  console.log(`closing frames: ${count} in ${Date.now() - started} ms`);
  return count;
}

/** A well-behaved pair of users posting and reading in their channel while the fuzzers run. */
async function wellBehaved(stop: () => boolean): Promise<number> {
  const [writer, reader] = [randomSnowflake(), randomSnowflake()];
  const channel = randomSnowflake();
  await api.join(channel, writer);
  await api.join(channel, reader);
  const w = await connectUser(gateway, writer, 'msgpack');
  const r = await connectUser(gateway, reader);
  let rounds = 0;
  while (!stop() || rounds < 5) {
    const posts = 1 + (rounds % 3);
    let last: ReadState | undefined;
    for (let i = 0; i < posts; i++) last = await w.createMessage({ channel_id: channel, mentions: i === 0 ? [reader] : [] });
    const view = (await api.readStates(reader)) as ReadState[];
    expect(view).toEqual([{ channel_id: channel, last_message_id: last!.last_message_id, last_acked_id: view[0].last_acked_id, unread_count: posts, mention_count: 1 }]);
    expect(await r.ack(channel, last!.last_message_id!)).toMatchObject({ unread_count: 0, mention_count: 0 });
    rounds++;
  }
  expect(w.isClosed || r.isClosed).toBe(false);
  await w.close();
  await r.close();
  return rounds;
}

describe(`fuzz (seed ${SEED})`, () => {
  it('answers 100,000+ hostile frames as specified, stays up, keeps serving, and returns to its memory baseline', async () => {
    const foreignOwner = randomSnowflake();
    const world: World = { foreignChannel: randomSnowflake(), foreignMessage: '' };
    await api.join(world.foreignChannel, foreignOwner);
    world.foreignMessage = await api.post(world.foreignChannel, foreignOwner);
    const users: FuzzUser[] = [];
    for (let i = 0; i < OPEN_SESSIONS; i++) {
      const user = { userId: randomSnowflake(), channel: randomSnowflake(), message: '' };
      await api.join(user.channel, user.userId);
      user.message = await api.post(user.channel, user.userId);
      users.push(user);
    }
    const ownerBefore = byChannel((await api.readStates(foreignOwner)) as ReadState[]);

    // Warm up, then take the baseline.
    await fuzzClosing(200);
    await sleep(200);
    await gateway.collectGarbage();
    const baselineHeap = await metricValue(gateway, 'nodejs_heap_size_used_bytes');
    const baselineConnections = await metricValue(gateway, 'gateway_connections');

    // The owner's live session: RESUME floods name it, and it must stay where it is.
    const owner = await connectUser(gateway, foreignOwner);
    const victim: Victim = { sessionId: owner.ready!.session_id, lastSequence: owner.lastSequence! };

    let fuzzing = true;
    const served = wellBehaved(() => !fuzzing);
    const counts = await Promise.all([
      ...users.map((user, i) => fuzzSession(user, world, i % 2 === 0 ? 'json' : 'msgpack')),
      fuzzClosing(CLOSING_FRAMES),
      fuzzResume(victim, RESUME_ATTEMPTS),
    ]);
    fuzzing = false;
    const rounds = await served;
    const answered = counts.reduce((a, b) => a + b, 0);
    expect(answered).toBeGreaterThanOrEqual(100_000);
    expect(rounds).toBeGreaterThan(5);

    // Up, serving, and nobody touched the foreign owner's state.
    expect((await fetch(`${gateway.httpUrl}/healthz`)).status).toBe(200);
    expect(byChannel((await api.readStates(foreignOwner)) as ReadState[])).toEqual(ownerBefore);
    expect(owner.isClosed).toBe(false);
    expect(await owner.ack(world.foreignChannel, world.foreignMessage)).toMatchObject({ unread_count: 0 });
    expect(await metricValue(gateway, 'gateway_resumes_total')).toBe(0);
    await owner.close();

    // Every fuzz session is gone and the heap is back near its baseline.
    await sleep(500);
    expect(await metricValue(gateway, 'gateway_connections')).toBe(baselineConnections);
    await gateway.collectGarbage();
    const heapAfter = await metricValue(gateway, 'nodejs_heap_size_used_bytes');
    expect(heapAfter).toBeLessThan(baselineHeap + 8 * 1024 * 1024);
  }, 300_000);
});
