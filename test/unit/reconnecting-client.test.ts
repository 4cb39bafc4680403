// The reconnecting client's schedule, on scripted sockets and a fake clock: exponential
// back-off with full jitter up to the ceiling, at once (to the named URL) after RECONNECT,
// back to the first step after a session is up, the fallback nodes in turn when one cannot
// be reached, and no retry after 4004.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ClientSocketHandlers, SocketFactory } from '../../src/client/gateway-client.js';
import { type ReconnectingEvent, ReconnectingClient } from '../../src/client/reconnecting-client.js';
import { encodeDispatch, encodeHello, encodeReconnect } from '../../src/gateway/codec.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Sockets that the test drives: each is recorded with its URL and handlers. */
function scriptedSockets() {
  const opened: Array<{ url: string; server: ClientSocketHandlers; sent: string[] }> = [];
  const factory: SocketFactory = (url, handlers) => {
    const entry = { url, server: handlers, sent: [] as string[] };
    opened.push(entry);
    return { send: (data) => entry.sent.push(data as string), close: (code = 1000, reason = '') => queueMicrotask(() => handlers.close(code, reason)) };
  };
  return { opened, factory };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('reconnecting client', () => {
  it('backs off exponentially with full jitter up to the ceiling, and starts over once a session is up', async () => {
    vi.useFakeTimers();
    const { opened, factory } = scriptedSockets();
    const events: ReconnectingEvent[] = [];
    const client = new ReconnectingClient({ url: 'ws://a.test/gateway', token: 't', socketFactory: factory, backoffMs: 100, maxBackoffMs: 1000, random: () => 0.999 });
    client.on('reconnecting', (event) => events.push(event));
    for (let attempt = 0; attempt < 6; attempt++) {
      await flush();
      opened.at(-1)!.server.close(1006, '');
      await flush();
      await vi.advanceTimersByTimeAsync(events.at(-1)!.delayMs);
    }
    expect(events.map((e) => e.delayMs)).toEqual([99, 199, 399, 799, 999, 999]);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6]);

    // Up: HELLO, IDENTIFY, READY.
    await flush();
    const socket = opened.at(-1)!;
    socket.server.message(encodeHello('json', 41_250) as string);
    await flush();
    expect(JSON.parse(socket.sent[0])).toMatchObject({ op: 2, d: { token: 't' } });
    socket.server.message(encodeDispatch('json', 'READY', { v: 2, session_id: 'a'.repeat(32), user: { id: '1' }, read_states: [] }, 1) as string);
    await flush();
    expect(client.state).toBe('ready');
    socket.server.close(1006, '');
    await flush();
    expect(events.at(-1)).toMatchObject({ attempt: 1, delayMs: 99 });

    // The next socket RESUMEs from the last sequence seen.
    await vi.advanceTimersByTimeAsync(99);
    const next = opened.at(-1)!;
    next.server.message(encodeHello('json', 41_250) as string);
    await flush();
    expect(JSON.parse(next.sent[0])).toEqual({ op: 6, d: { token: 't', session_id: 'a'.repeat(32), seq: 1 } });
    await client.close();
  });

  it('reconnects at once after RECONNECT, to the URL it names', async () => {
    vi.useFakeTimers();
    const { opened, factory } = scriptedSockets();
    const events: ReconnectingEvent[] = [];
    const client = new ReconnectingClient({ url: 'ws://a.test/gateway', token: 't', socketFactory: factory, random: () => 0.5 });
    client.on('reconnecting', (event) => events.push(event));
    await flush();
    const first = opened[0];
    first.server.message(encodeHello('json', 41_250) as string);
    first.server.message(encodeReconnect('json', 'ws://b.test/gateway') as string);
    first.server.close(4010, '');
    await flush();
    expect(events).toEqual([{ attempt: 1, delayMs: 0, reason: 4010 }]);
    expect(opened[1].url).toBe('ws://b.test/gateway?encoding=json');
    expect(client.stats.reconnectRequests).toBe(1);
    await client.close();
  });

  it('stays on the node a redirect named, counts the redirect, and tries the fallbacks in turn when a node cannot be reached', async () => {
    vi.useFakeTimers();
    const { opened, factory } = scriptedSockets();
    const events: ReconnectingEvent[] = [];
    const urls = ['ws://a.test/gateway', 'ws://b.test/gateway', 'ws://c.test/gateway'];
    const client = new ReconnectingClient({ url: urls[0], fallbackUrls: urls.slice(1), token: 't', socketFactory: factory, backoffMs: 100, random: () => 0.5 });
    client.on('reconnecting', (event) => events.push(event));
    await flush();
    // a sends the client on to c (the user's node): at once, counted as a redirect.
    opened[0].server.message(encodeHello('json', 41_250) as string);
    opened[0].server.message(encodeReconnect('json', urls[2]) as string);
    opened[0].server.close(4010, '');
    await flush();
    expect(opened[1].url).toBe(`${urls[2]}?encoding=json`);
    expect(client.stats).toMatchObject({ reconnectRequests: 1, redirects: 1 });
    expect(client.currentUrl).toBe(urls[2]);

    // c answers, then the socket drops (a network blip): the next attempt goes back to c, not to a.
    opened[1].server.message(encodeHello('json', 41_250) as string);
    await flush();
    opened[1].server.close(1006, '');
    await flush();
    await vi.advanceTimersByTimeAsync(events.at(-1)!.delayMs);
    expect(opened[2].url).toBe(`${urls[2]}?encoding=json`);

    // c cannot be reached (closed before HELLO): each later attempt tries the next node.
    opened[2].server.close(1006, '');
    await flush();
    await vi.advanceTimersByTimeAsync(events.at(-1)!.delayMs);
    expect(opened[3].url).toBe(`${urls[0]}?encoding=json`);
    opened[3].server.close(1006, '');
    await flush();
    await vi.advanceTimersByTimeAsync(events.at(-1)!.delayMs);
    expect(opened[4].url).toBe(`${urls[1]}?encoding=json`);
    expect(client.stats.redirects).toBe(1);
    await client.close();
  });

  it('gives a socket up and tries again later when the token cannot be had', async () => {
    vi.useFakeTimers();
    const { opened, factory } = scriptedSockets();
    let calls = 0;
    const token = () => {
      calls++;
      if (calls === 1) throw new Error('token service down');
      return 't';
    };
    const events: ReconnectingEvent[] = [];
    const client = new ReconnectingClient({ url: 'ws://a.test/gateway', token, socketFactory: factory, random: () => 0.5 });
    client.on('reconnecting', (event) => events.push(event));
    await flush();
    opened[0].server.message(encodeHello('json', 41_250) as string);
    await flush();
    expect(events).toEqual([{ attempt: 1, delayMs: 250, reason: 4000 }]);
    await vi.advanceTimersByTimeAsync(250);
    opened[1].server.message(encodeHello('json', 41_250) as string);
    await flush();
    expect(JSON.parse(opened[1].sent[0])).toMatchObject({ op: 2, d: { token: 't' } });
    await client.close();
  });

  it('stops for good on 4004', async () => {
    vi.useFakeTimers();
    const { opened, factory } = scriptedSockets();
    const client = new ReconnectingClient({ url: 'ws://a.test/gateway', token: 't', socketFactory: factory });
    const closed = vi.fn();
    client.on('closed', closed);
    await flush();
    opened[0].server.message(encodeHello('json', 41_250) as string);
    opened[0].server.close(4004, 'Authentication failed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(closed).toHaveBeenCalledWith({ code: 4004, reason: 'refused by the gateway' });
    expect(opened).toHaveLength(1);
    expect(client.state).toBe('closed');
  });
});
