// The connection and session state machine in process, on the real engine over an in-memory store: what
// the e2e tests cannot arrange cheaply (a load held open, a store that fails, timers
// driven by a fake clock).

import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection, type ConnectionEnvironment } from '../../src/gateway/connection.js';
import { Dispatcher } from '../../src/gateway/dispatch.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { ResumableSessions } from '../../src/gateway/resumable-sessions.js';
import { TokenBucket } from '../../src/gateway/token-bucket.js';
import { UserTokens } from '../../src/gateway/user-tokens.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import type { ReadStateRecord } from '../../src/store/records.js';
import { InMemoryReadStateStore } from '../support/in-memory-read-state-store.js';

/** An in-memory store whose single-state loads wait until released. */
class GatedStore extends InMemoryReadStateStore {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  override async loadState(userId: string, channelId: string): Promise<ReadStateRecord | null> {
    await this.gate;
    return super.loadState(userId, channelId);
  }
}

interface Recorded {
  frames: Array<{ op: number; t?: string; s?: number; d: Record<string, unknown> }>;
  closedWith: number | undefined;
}

const log = pino({ level: 'silent' });
const tokens = new UserTokens('unit-secret');

function environment(store: InMemoryReadStateStore, overrides: Partial<ConnectionEnvironment> = {}, resume = { windowMs: 60_000, buffer: 1000 }) {
  const readStates = new PersistentReadStates({ store, capacity: 1000, flushDelayMs: 60_000, workerId: 1 });
  const dispatcher = new Dispatcher(readStates, log);
  const sessions = new ResumableSessions(dispatcher, resume.windowMs, resume.buffer);
  const env: ConnectionEnvironment = {
    readStates,
    dispatcher,
    sessions,
    tokens,
    metrics: new GatewayMetrics(
      readStates,
      () => dispatcher.onlineUsers,
      () => sessions.stats,
    ),
    log,
    heartbeatIntervalMs: 1000,
    rateLimit: 1000,
    rateWindowMs: 1000,
    identifyTimeoutMs: 10_000,
    ...overrides,
  };
  return { env, readStates };
}

function open(env: ConnectionEnvironment): { connection: Connection; recorded: Recorded } {
  const recorded: Recorded = { frames: [], closedWith: undefined };
  const connection: Connection = new Connection(
    {
      send: (frame) => recorded.frames.push(JSON.parse(typeof frame === 'string' ? frame : new TextDecoder().decode(frame)) as Recorded['frames'][number]),
      end: (code) => {
        recorded.closedWith = code;
        connection.socketClosed(code);
      },
    },
    'json',
    env,
  );
  connection.open();
  return { connection, recorded };
}

const frame = (payload: unknown) => new TextEncoder().encode(JSON.stringify(payload));

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('session', () => {
  it('answers requests strictly in order when the first one waits for a store load', async () => {
    const store = new GatedStore();
    await environment(store).readStates.join('20', '1');
    // A fresh engine over the same store: user 1's states become resident with READY.
    const { env } = environment(store);
    const { connection, recorded } = open(env);
    connection.receive(frame({ op: 2, d: { token: await tokens.sign('1', 60) } }));
    await until(() => recorded.frames.some((f) => f.t === 'READY'));

    store.hold();
    // Mentioning 999 makes the engine load (999, 20) to learn it is no member: held.
    connection.receive(frame({ op: 20, d: { channel_id: '20', mentions: ['999'], nonce: 1 } }));
    connection.receive(frame({ op: 1, d: null }));
    // These two could be answered at once, but must wait for the first.
    connection.receive(frame({ op: 20, d: { channel_id: '20', nonce: 2 } }));
    connection.receive(frame({ op: 21, d: { channel_id: 'x', nonce: 3 } }));
    const answers = () => recorded.frames.filter((f) => (f.op === 0 && f.t !== 'READY') || f.op === 12).map((f) => f.d.nonce);
    await until(() => recorded.frames.some((f) => f.op === 11));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answers()).toEqual([]);

    store.release();
    await until(() => answers().length === 3);
    expect(answers()).toEqual([1, 2, 3]);
    connection.close(1001);
  });

  it('closes with 4000 when a load the request needs fails, and the process goes on', async () => {
    const store = new InMemoryReadStateStore();
    const { env, readStates } = environment(store);
    await readStates.join('10', '1');
    const { connection, recorded } = open(env);
    connection.receive(frame({ op: 2, d: { token: await tokens.sign('1', 60) } }));
    await until(() => recorded.frames.some((f) => f.t === 'READY'));
    store.down = true;
    connection.receive(frame({ op: 20, d: { channel_id: '10', mentions: ['2'], nonce: 1 } }));
    await until(() => recorded.closedWith !== undefined);
    expect(recorded.closedWith).toBe(4000);
  });

  it('closes with 4009 without IDENTIFY in time, and when heartbeats stop', async () => {
    vi.useFakeTimers();
    const { env } = environment(new InMemoryReadStateStore(), { heartbeatIntervalMs: 60_000, identifyTimeoutMs: 10_000 });
    const quiet = open(env);
    vi.advanceTimersByTime(9_999);
    expect(quiet.recorded.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(quiet.recorded.closedWith).toBe(4009);

    const { env: fast } = environment(new InMemoryReadStateStore(), { heartbeatIntervalMs: 1000, identifyTimeoutMs: 1_000_000 });
    const beating = open(fast);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(1400);
      beating.connection.receive(frame({ op: 1, d: null }));
    }
    expect(beating.recorded.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1499);
    expect(beating.recorded.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(beating.recorded.closedWith).toBe(4009);
  });

  it('closes with 4008 once the rate limit is spent, heartbeats included', () => {
    const { env } = environment(new InMemoryReadStateStore(), { rateLimit: 5, rateWindowMs: 60_000 });
    const { connection, recorded } = open(env);
    for (let i = 0; i < 5; i++) connection.receive(frame({ op: 1, d: null }));
    expect(recorded.frames.filter((f) => f.op === 11)).toHaveLength(5);
    expect(recorded.closedWith).toBeUndefined();
    connection.receive(frame({ op: 1, d: null }));
    expect(recorded.closedWith).toBe(4008);
  });
});

describe('resume', () => {
  /** Opens a connection and identifies `userId` on it; resolves with READY's session id. */
  async function identified(env: ConnectionEnvironment, userId: string) {
    const opened = open(env);
    opened.connection.receive(frame({ op: 2, d: { token: await tokens.sign(userId, 60) } }));
    await until(() => opened.recorded.frames.some((f) => f.t === 'READY'));
    const ready = opened.recorded.frames.find((f) => f.t === 'READY')!;
    return { ...opened, sessionId: ready.d.session_id as string };
  }

  async function resumed(env: ConnectionEnvironment, userId: string, sessionId: unknown, seq: unknown) {
    const opened = open(env);
    opened.connection.receive(frame({ op: 6, d: { token: await tokens.sign(userId, 60), session_id: sessionId, seq } }));
    await until(() => opened.recorded.frames.some((f) => f.t === 'RESUMED' || f.op === 9) || opened.recorded.closedWith !== undefined);
    return opened;
  }

  const dispatches = (recorded: Recorded) => recorded.frames.filter((f) => f.op === 0).map((f) => ({ t: f.t, s: f.s, unread: f.d.unread_count }));

  async function channelOfTwo(resume?: { windowMs: number; buffer: number }) {
    const { env, readStates } = environment(new InMemoryReadStateStore(), {}, resume);
    await readStates.join('20', '1');
    await readStates.join('20', '2');
    const author = await identified(env, '2');
    const post = (nonce: number) => author.connection.receive(frame({ op: 20, d: { channel_id: '20', nonce } }));
    return { env, author, post };
  }

  it('replays what a dropped socket missed, in order with the original s, then RESUMED, then goes on', async () => {
    const { env, post } = await channelOfTwo();
    const reader = await identified(env, '1');
    post(1);
    await until(() => dispatches(reader.recorded).length === 2);
    reader.connection.socketClosed(1006);
    post(2);
    post(3);
    post(4);

    const back = await resumed(env, '1', reader.sessionId, 2);
    expect(dispatches(back.recorded)).toEqual([
      { t: 'READ_STATE_UPDATE', s: 3, unread: 2 },
      { t: 'READ_STATE_UPDATE', s: 4, unread: 3 },
      { t: 'READ_STATE_UPDATE', s: 5, unread: 4 },
      { t: 'RESUMED', s: 6, unread: undefined },
    ]);
    expect(back.recorded.frames.at(-1)!.d).toEqual({ session_id: reader.sessionId });
    post(5);
    await until(() => dispatches(back.recorded).length === 5);
    expect(dispatches(back.recorded)[4]).toEqual({ t: 'READ_STATE_UPDATE', s: 7, unread: 5 });
    expect(env.sessions.stats).toMatchObject({ sessions: 2, detached: 0 });
  });

  it('answers every RESUME it cannot honour with INVALID_SESSION and leaves the socket open for IDENTIFY', async () => {
    const { env, post } = await channelOfTwo({ windowMs: 60_000, buffer: 2 });
    const reader = await identified(env, '1');
    reader.connection.socketClosed(1006);
    post(1);
    post(2);
    post(3);
    await until(() => env.sessions.stats.bufferedDispatches >= 2 + 2);
    const refused = [
      ['1', '0123456789abcdef0123456789abcdef', 1], // unknown session
      ['2', reader.sessionId, 1], // another user's token
      ['1', reader.sessionId, 1], // s=2 was pushed out of the 2-dispatch buffer
      ['1', reader.sessionId, 9], // ahead of the last s (4)
      ['1', reader.sessionId, -1],
      ['1', reader.sessionId, '3'],
      ['1', 42, 3],
      ['1', reader.sessionId.toUpperCase(), 3],
    ] as const;
    for (const [userId, sessionId, seq] of refused) {
      const attempt = await resumed(env, userId, sessionId, seq);
      expect(attempt.recorded.frames.at(-1), JSON.stringify([userId, sessionId, seq])).toMatchObject({ op: 9, d: false });
      expect(attempt.recorded.closedWith).toBeUndefined();
      attempt.connection.receive(frame({ op: 2, d: { token: await tokens.sign(userId, 60) } }));
      await until(() => attempt.recorded.frames.some((f) => f.t === 'READY'));
      attempt.connection.close(1001);
    }
    const text = await env.metrics.registry.getSingleMetricAsString('gateway_resumes_refused_total');
    expect(text).toContain('reason="unknown_session"} 1');
    expect(text).toContain('reason="wrong_user"} 1');
    expect(text).toContain('reason="seq"} 2');
    expect(text).toContain('reason="malformed"} 4');
    // The buffer still covers s=2..4 from s=2: that RESUME goes through.
    expect(dispatches((await resumed(env, '1', reader.sessionId, 2)).recorded).map((d) => d.s)).toEqual([3, 4, 5]);

    const badToken = open(env);
    badToken.connection.receive(frame({ op: 6, d: { token: 'not-a-jwt', session_id: reader.sessionId, seq: 2 } }));
    await until(() => badToken.recorded.closedWith !== undefined);
    expect(badToken.recorded.closedWith).toBe(4004);
  });

  it('closes a socket still attached with 4007 when its session is resumed elsewhere', async () => {
    const { env, post } = await channelOfTwo();
    const first = await identified(env, '1');
    post(1);
    await until(() => dispatches(first.recorded).length === 2);
    const second = await resumed(env, '1', first.sessionId, 1);
    expect(first.recorded.closedWith).toBe(4007);
    expect(dispatches(second.recorded).map((d) => d.t)).toEqual(['READ_STATE_UPDATE', 'RESUMED']);
    // The replaced socket's close does not detach the session from its new socket.
    post(2);
    await until(() => dispatches(second.recorded).length === 3);
    expect(env.sessions.stats).toMatchObject({ detached: 0 });
  });

  it('ends a session when the window passes without RESUME, and at once when the client closes with 1000', async () => {
    const { env } = await channelOfTwo({ windowMs: 100, buffer: 10 });
    const dropped = await identified(env, '1');
    dropped.connection.socketClosed(1006);
    expect(env.sessions.stats).toMatchObject({ sessions: 2, detached: 1 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(env.sessions.stats).toMatchObject({ sessions: 1, detached: 0 });
    expect((await resumed(env, '1', dropped.sessionId, 1)).recorded.frames.at(-1)).toMatchObject({ op: 9 });

    const done = await identified(env, '1');
    done.connection.socketClosed(1000);
    expect(env.sessions.stats).toMatchObject({ sessions: 1, detached: 0 });
    expect((await resumed(env, '1', done.sessionId, 1)).recorded.frames.at(-1)).toMatchObject({ op: 9 });
  });

  it('replays the answer to a request still in flight when the socket dropped, before RESUMED', async () => {
    const store = new GatedStore();
    await environment(store).readStates.join('20', '1');
    const { env } = environment(store);
    const client = await identified(env, '1');
    store.hold();
    // Mentioning 999 makes the engine load (999, 20): the answer waits for the store.
    client.connection.receive(frame({ op: 20, d: { channel_id: '20', mentions: ['999'], nonce: 7 } }));
    client.connection.socketClosed(1006);
    const back = open(env);
    back.connection.receive(frame({ op: 6, d: { token: await tokens.sign('1', 60), session_id: client.sessionId, seq: 1 } }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(back.recorded.frames.filter((f) => f.op === 0)).toEqual([]);
    store.release();
    await until(() => back.recorded.frames.some((f) => f.t === 'RESUMED'));
    expect(back.recorded.frames.filter((f) => f.op === 0).map((f) => [f.t, f.s, f.d.nonce])).toEqual([
      ['READ_STATE_UPDATE', 2, 7],
      ['RESUMED', 3, undefined],
    ]);
  });
});

describe('token bucket', () => {
  it('lets a burst of `limit` through, then refills `limit` per window', () => {
    const bucket = new TokenBucket(3, 3000, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
    expect(bucket.take(999)).toBe(false);
    expect(bucket.take(1000)).toBe(true);
    expect(bucket.take(1000)).toBe(false);
    expect([bucket.take(100_000), bucket.take(100_000), bucket.take(100_000), bucket.take(100_000)]).toEqual([true, true, true, false]);
  });
});
