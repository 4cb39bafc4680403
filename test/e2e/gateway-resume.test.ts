// docs/protocol.md v2 "Reconnect and resume", on the real gateway and Cassandra: a socket that
// drops mid-stream (closed by the client, reset by the network, or silent) is resumed by the
// reconnecting client, which then has every update exactly once and in order; every RESUME
// the gateway cannot honour gets INVALID_SESSION; a stop sends RECONNECT, then 1001, and the
// client comes back to the next process with the right counts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientSocket, type Encoding, GatewayClient, type ReadState, type Ready } from '../../src/client/gateway-client.js';
import { connectNode, nodeSocketFactory } from '../../src/client/node-socket.js';
import { ReconnectingClient } from '../../src/client/reconnecting-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace, waitUntil } from '../support/cassandra-nodes.js';
import { AdminApi, connectUser, type GatewayProcess, metricValue, randomSnowflake, sleep, startGateway, userToken } from '../support/gateway-harness.js';
import { TcpRelay } from '../support/tcp-relay.js';

const keyspace = uniqueKeyspace('e2e_resume');
const RESUME_BUFFER = 50;
const RESUME_WINDOW_MS = 3000;
const settings = {
  CASSANDRA_KEYSPACE: keyspace,
  GATEWAY_HEARTBEAT_INTERVAL_MS: '1000',
  GATEWAY_RESUME_BUFFER: String(RESUME_BUFFER),
  GATEWAY_RESUME_WINDOW_MS: String(RESUME_WINDOW_MS),
};

let gateway: GatewayProcess;
let api: AdminApi;
let relay: TcpRelay;

beforeAll(async () => {
  gateway = await startGateway(settings);
  api = new AdminApi(gateway.httpUrl);
  relay = await TcpRelay.start(gateway.port);
});

afterAll(async () => {
  await relay?.close();
  await gateway?.stop();
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

interface Received {
  t: string;
  s: number;
  d: unknown;
}

/** A ReconnectingClient recording every dispatch and every socket it opened. */
function reconnecting(url: string, userId: string, encoding: Encoding = 'json') {
  const sockets: ClientSocket[] = [];
  const client = new ReconnectingClient({
    url,
    token: () => userToken(userId),
    encoding,
    backoffMs: 50,
    maxBackoffMs: 500,
    socketFactory: (target, handlers) => {
      const socket = nodeSocketFactory(target, handlers);
      sockets.push(socket);
      return socket;
    },
  });
  const stream: Received[] = [];
  const readies: Ready[] = [];
  client.on('dispatch', (t, d, s) => stream.push({ t, s, d }));
  client.on('ready', (ready) => readies.push(ready));
  return { client, stream, sockets, readies };
}

function unreadCounts(stream: Received[], channelId: string): number[] {
  return stream.filter((r) => r.t === 'READ_STATE_UPDATE' && (r.d as ReadState).channel_id === channelId).map((r) => (r.d as ReadState).unread_count);
}

/** A channel with an author and a reader, and the reader's user id. */
async function channelPair(): Promise<{ channelId: string; authorId: string; readerId: string }> {
  const channelId = randomSnowflake();
  const authorId = randomSnowflake();
  const readerId = randomSnowflake();
  await api.join(channelId, authorId);
  await api.join(channelId, readerId);
  return { channelId, authorId, readerId };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('a dropped socket resumes', () => {
  const drops: Array<[string, Encoding, (r: ReturnType<typeof reconnecting>) => void]> = [
    ['closed abruptly by the client', 'json', (r) => r.sockets.at(-1)!.terminate!()],
    ['reset by the network', 'msgpack', () => relay.cut()],
  ];
  for (const [how, encoding, drop] of drops) {
    it(`${how} (${encoding}): every missed update arrives once, in order`, async () => {
      const { channelId, authorId, readerId } = await channelPair();
      const resumesBefore = await metricValue(gateway, 'gateway_resumes_total');
      const reader = reconnecting(`ws://127.0.0.1:${relay.port}/gateway`, readerId, encoding);
      try {
        await reader.client.whenReady();
        const messages = 60;
        let drops = 0;
        for (let i = 1; i <= messages; i++) {
          await api.post(channelId, authorId);
          if (i % 20 === 0 && i < messages) {
            drop(reader);
            drops++;
            // Posts go on while the client is away: these are the ones it must get back.
            for (let away = 0; away < 5; away++) await api.post(channelId, authorId);
            i += 5;
            await waitUntil('the client resumed', () => reader.client.stats.resumes === drops, 10_000, 5);
          }
        }
        await waitUntil('every update arrived', () => unreadCounts(reader.stream, channelId).length >= messages, 10_000, 10);
        await sleep(100);
        expect(unreadCounts(reader.stream, channelId)).toEqual(range(messages));
        // One sequence without a gap or a repeat, READY and both RESUMEDs included.
        expect(reader.stream.map((r) => r.s)).toEqual(range(reader.stream.length));
        expect(reader.stream.filter((r) => r.t === 'RESUMED')).toHaveLength(2);
        expect(reader.client.stats).toMatchObject({ resumes: 2, invalidSessions: 0 });
        expect(reader.readies).toHaveLength(1);
        expect(await metricValue(gateway, 'gateway_resumes_total')).toBe(resumesBefore + 2);
      } finally {
        await reader.client.close();
      }
    });
  }

  it('is given up when heartbeats go unacknowledged (a silent, zombie socket) and resumed', async () => {
    const { channelId, authorId, readerId } = await channelPair();
    const reader = reconnecting(`ws://127.0.0.1:${relay.port}/gateway`, readerId);
    await reader.client.whenReady();
    await api.post(channelId, authorId);
    relay.stall();
    const stalledAt = Date.now();
    for (let i = 0; i < 5; i++) await api.post(channelId, authorId);
    await waitUntil('the client resumed', () => reader.client.stats.resumes === 1, 10_000, 10);
    // The heartbeat interval is 1 s: the unanswered one is noticed when the next falls due.
    expect(Date.now() - stalledAt).toBeLessThan(3000);
    await waitUntil('every update arrived', () => unreadCounts(reader.stream, channelId).length >= 6, 5000, 10);
    expect(unreadCounts(reader.stream, channelId)).toEqual(range(6));
    expect(reader.client.stats).toMatchObject({ zombies: 1, invalidSessions: 0 });
    await reader.client.close();
  });

  it('answers requests in flight across the drop once, and refuses new ones while away', async () => {
    const { channelId, readerId } = await channelPair();
    const reader = reconnecting(gateway.wsUrl, readerId);
    await reader.client.whenReady();
    const created = reader.client.createMessage({ channel_id: channelId });
    reader.sockets.at(-1)!.terminate!();
    // The request either reached the gateway (answered, through the replay if need be) or did not (rejected as not delivered).
    const outcome = await created.then(
      (state) => state.last_message_id,
      (error: Error) => error.name,
    );
    await reader.client.whenReady();
    const states = (await api.readStates(readerId)) as ReadState[];
    if (outcome === 'NotDeliveredError') expect(states[0].last_message_id).toBeNull();
    else expect(states[0].last_message_id).toBe(outcome);
    await reader.client.close();
    await expect(reader.client.ack(channelId, '1')).rejects.toThrow(/not connected/);
  });
});

describe('RESUME refused: INVALID_SESSION, and the socket stays open for IDENTIFY', () => {
  async function resumeOn(encoding: Encoding, userId: string, sessionId: string, seq: number) {
    const client = await connectNode(gateway.wsUrl, { encoding });
    const resumed = await client.resume(await userToken(userId), sessionId, seq);
    return { client, resumed };
  }

  it('for a sequence the buffer no longer holds, another user, another encoding, a passed window', async () => {
    const { channelId, authorId, readerId } = await channelPair();
    const reader = await connectUser(gateway, readerId);
    const sessionId = reader.ready!.session_id;
    for (let i = 0; i < RESUME_BUFFER + 1; i++) await api.post(channelId, authorId);
    // From what the client kept: the last update may have arrived before the last post's answer.
    await waitUntil('the reader has every update', () => reader.received.some((p) => (p.d as ReadState | null)?.unread_count === RESUME_BUFFER + 1), 10_000, 10);
    await reader.close(4000);

    const refused = [
      await resumeOn('json', readerId, sessionId, 1), // s = 2 was pushed out of the buffer
      await resumeOn('json', authorId, sessionId, reader.lastSequence!), // another user's token
      await resumeOn('msgpack', readerId, sessionId, reader.lastSequence!), // the session's frames are JSON
    ];
    for (const { client, resumed } of refused) {
      expect(resumed).toBe(false);
      expect(client.isClosed).toBe(false);
      const ready = await client.identify(await userToken(readerId));
      expect(ready.read_states).toEqual([expect.objectContaining({ channel_id: channelId, unread_count: RESUME_BUFFER + 1 })]);
      await client.close();
    }
    // From the last sequence it resumes: nothing missed, only RESUMED.
    const fine = await resumeOn('json', readerId, sessionId, reader.lastSequence!);
    expect(fine.resumed).toBe(true);
    await fine.client.close(4000);

    await sleep(RESUME_WINDOW_MS + 500);
    const late = await resumeOn('json', readerId, sessionId, reader.lastSequence! + 1);
    expect(late.resumed).toBe(false);
    await late.client.close();
  });

  it('closes with 4004 for a bad token, as IDENTIFY does', async () => {
    const client = await connectNode(gateway.wsUrl);
    await expect(client.resume('not.a.token', '0123456789abcdef0123456789abcdef', 1)).rejects.toThrow(/4004/);
  });

  it('closes the socket a session had with 4007 when it is resumed from another', async () => {
    const { readerId } = await channelPair();
    const first = await connectUser(gateway, readerId);
    const second = await connectNode(gateway.wsUrl);
    expect(await second.resume(await userToken(readerId), first.ready!.session_id, first.lastSequence!)).toBe(true);
    expect((await first.closed).code).toBe(4007);
    await second.close();
  });
});

describe('a stopped gateway', () => {
  it('sends RECONNECT then 1001; its clients come back to the next process, which refuses RESUME, with the right counts', async () => {
    const own = { ...settings, GATEWAY_RESUME_WINDOW_MS: '60000' };
    const first = await startGateway(own);
    const firstApi = new AdminApi(first.httpUrl);
    const front = await TcpRelay.start(first.port);
    let next: GatewayProcess | undefined;
    try {
      const channelId = randomSnowflake();
      const [authorId, readerId] = [randomSnowflake(), randomSnowflake()];
      await firstApi.join(channelId, authorId);
      await firstApi.join(channelId, readerId);
      const reader = reconnecting(`ws://127.0.0.1:${front.port}/gateway`, readerId);
      await reader.client.whenReady();
      const watcher = await connectNode(first.wsUrl, { keepReceived: true });
      await watcher.identify(await userToken(readerId));
      for (let i = 0; i < 5; i++) await firstApi.post(channelId, authorId);
      await waitUntil('the updates arrived', () => unreadCounts(reader.stream, channelId).length === 5, 5000, 10);

      expect(await first.stop('SIGTERM')).toBe(0);
      expect((await watcher.closed).code).toBe(1001);
      expect(watcher.received.at(-1)).toMatchObject({ op: 7 });
      await waitUntil('the client is reconnecting', () => reader.client.state === 'reconnecting', 5000, 10);

      next = await startGateway(own);
      front.retarget(next.port);
      await waitUntil('the client is back', () => reader.client.state === 'ready', 20_000, 20);
      expect(reader.client.stats).toMatchObject({ invalidSessions: 1, reconnectRequests: 1 });
      expect(reader.readies).toHaveLength(2);
      expect(reader.readies[1].read_states).toEqual([expect.objectContaining({ channel_id: channelId, unread_count: 5 })]);
      await new AdminApi(next.httpUrl).post(channelId, authorId);
      await waitUntil('the next update arrived', () => unreadCounts(reader.stream, channelId).length === 6, 5000, 10);
      expect(unreadCounts(reader.stream, channelId).at(-1)).toBe(6);
      await reader.client.close();
    } finally {
      await front.close();
      await first.stop();
      await next?.stop();
    }
  });
});

describe('the client on its own', () => {
  it('gives up on a refused token (4004) instead of retrying', async () => {
    const client = new ReconnectingClient({ url: gateway.wsUrl, token: 'not.a.token', socketFactory: nodeSocketFactory, backoffMs: 10 });
    await expect(client.whenReady()).rejects.toThrow(/4004/);
    expect(client.state).toBe('closed');
    expect(client.stats.reconnects).toBe(0);
  });

  it('keeps a plain GatewayClient single-socket: its requests fail when its socket closes', async () => {
    const { channelId, readerId } = await channelPair();
    const plain: GatewayClient = await connectUser(gateway, readerId);
    const pending = plain.createMessage({ channel_id: channelId });
    plain.abort();
    await expect(pending).rejects.toThrow(/gateway closed/);
  });
});
