// The session state machine in process, on the real engine over an in-memory store: what
// the e2e tests cannot arrange cheaply (a load held open, a store that fails, timers
// driven by a fake clock).

import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Dispatcher } from '../../src/gateway/dispatch.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { Session, type SessionEnvironment } from '../../src/gateway/session.js';
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

function environment(store: InMemoryReadStateStore, overrides: Partial<SessionEnvironment> = {}) {
  const readStates = new PersistentReadStates({ store, capacity: 1000, flushDelayMs: 60_000, workerId: 1 });
  const dispatcher = new Dispatcher(readStates, log);
  const env: SessionEnvironment = {
    readStates,
    dispatcher,
    tokens,
    metrics: new GatewayMetrics(
      () => readStates.stats,
      () => dispatcher.onlineUsers,
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

function open(env: SessionEnvironment): { session: Session; recorded: Recorded } {
  const recorded: Recorded = { frames: [], closedWith: undefined };
  const session: Session = new Session(
    {
      send: (frame) => recorded.frames.push(JSON.parse(frame as string) as Recorded['frames'][number]),
      end: (code) => {
        recorded.closedWith = code;
        session.socketClosed(code);
      },
    },
    'json',
    env,
  );
  session.open();
  return { session, recorded };
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
    const { session, recorded } = open(env);
    session.receive(frame({ op: 2, d: { token: await tokens.sign('1', 60) } }));
    await until(() => recorded.frames.some((f) => f.t === 'READY'));

    store.hold();
    // Mentioning 999 makes the engine load (999, 20) to learn it is no member: held.
    session.receive(frame({ op: 20, d: { channel_id: '20', mentions: ['999'], nonce: 1 } }));
    session.receive(frame({ op: 1, d: null }));
    // These two could be answered at once, but must wait for the first.
    session.receive(frame({ op: 20, d: { channel_id: '20', nonce: 2 } }));
    session.receive(frame({ op: 21, d: { channel_id: 'x', nonce: 3 } }));
    const answers = () => recorded.frames.filter((f) => (f.op === 0 && f.t !== 'READY') || f.op === 12).map((f) => f.d.nonce);
    await until(() => recorded.frames.some((f) => f.op === 11));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(answers()).toEqual([]);

    store.release();
    await until(() => answers().length === 3);
    expect(answers()).toEqual([1, 2, 3]);
    session.close(1001);
  });

  it('closes with 4000 when a load the request needs fails, and the process goes on', async () => {
    const store = new InMemoryReadStateStore();
    const { env, readStates } = environment(store);
    await readStates.join('10', '1');
    const { session, recorded } = open(env);
    session.receive(frame({ op: 2, d: { token: await tokens.sign('1', 60) } }));
    await until(() => recorded.frames.some((f) => f.t === 'READY'));
    store.down = true;
    session.receive(frame({ op: 20, d: { channel_id: '10', mentions: ['2'], nonce: 1 } }));
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
      beating.session.receive(frame({ op: 1, d: null }));
    }
    expect(beating.recorded.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1499);
    expect(beating.recorded.closedWith).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(beating.recorded.closedWith).toBe(4009);
  });

  it('closes with 4008 once the rate limit is spent, heartbeats included', () => {
    const { env } = environment(new InMemoryReadStateStore(), { rateLimit: 5, rateWindowMs: 60_000 });
    const { session, recorded } = open(env);
    for (let i = 0; i < 5; i++) session.receive(frame({ op: 1, d: null }));
    expect(recorded.frames.filter((f) => f.op === 11)).toHaveLength(5);
    expect(recorded.closedWith).toBeUndefined();
    session.receive(frame({ op: 1, d: null }));
    expect(recorded.closedWith).toBe(4008);
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
