// docs/protocol.md "HTTP API": the admin calls with their statuses and bodies, the bearer
// token, hostile bodies, and the health, readiness and metrics endpoints.

import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadState } from '../../src/client/gateway-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { AdminApi, connectUser, type GatewayProcess, randomSnowflake, startGateway } from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_http');
let gateway: GatewayProcess;
let api: AdminApi;

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace });
  api = new AdminApi(gateway.httpUrl);
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

const INVALID = { code: 50035, message: 'Invalid Form Body' };
const BAD_IDS = ['abc', '', '-1', '1.5', '1'.repeat(21), '18446744073709551616', '%31'];

describe('authorization', () => {
  it('answers 401 to every /v1 call without the right bearer token', async () => {
    const channel = randomSnowflake();
    const user = randomSnowflake();
    const calls: Array<[string, string]> = [
      ['PUT', `/v1/channels/${channel}/members/${user}`],
      ['DELETE', `/v1/channels/${channel}/members/${user}`],
      ['POST', `/v1/channels/${channel}/messages`],
      ['GET', `/v1/users/${user}/read-states`],
      ['GET', '/v1/nothing-here'],
    ];
    for (const header of [undefined, 'Bearer wrong', 'bearer e2e-admin-token-with-enough-length', 'Basic e2e', 'Bearer ', 'Bearer e2e-admin-token-with-enough-lengthX']) {
      for (const [method, path] of calls) {
        const response = await fetch(`${gateway.httpUrl}${path}`, {
          method,
          headers: header === undefined ? {} : { authorization: header },
          body: method === 'POST' ? JSON.stringify({ author_id: user }) : undefined,
        });
        expect(response.status, `${method} ${path} with ${header}`).toBe(401);
      }
    }
    // Nothing happened.
    expect(await api.readStates(user)).toEqual([]);
  });
});

describe('membership calls', () => {
  it('PUT adds a member (creating the channel) with 204; again keeps its state', async () => {
    const [channel, author, user] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    expect((await api.call('PUT', `/v1/channels/${channel}/members/${author}`)).status).toBe(204);
    const message = await api.post(channel, author);
    expect((await api.call('PUT', `/v1/channels/${channel}/members/${user}`)).status).toBe(204);
    expect(await api.readStates(user)).toEqual([{ channel_id: channel, last_message_id: message, last_acked_id: message, unread_count: 0, mention_count: 0 }]);
    const second = await api.post(channel, author);
    expect((await api.call('PUT', `/v1/channels/${channel}/members/${user}`)).status).toBe(204);
    expect(await api.readStates(user)).toEqual([{ channel_id: channel, last_message_id: second, last_acked_id: message, unread_count: 1, mention_count: 0 }]);
  });

  it('DELETE removes a member with 204, also when not a member; 404 10003 for an unknown channel', async () => {
    const [channel, user, stranger] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    await api.join(channel, user);
    expect(await api.leave(channel, user)).toEqual({ status: 204, body: undefined });
    expect(await api.readStates(user)).toEqual([]);
    expect(await api.leave(channel, user)).toEqual({ status: 204, body: undefined });
    expect(await api.leave(channel, stranger)).toEqual({ status: 204, body: undefined });
    expect(await api.leave(randomSnowflake(), user)).toEqual({ status: 404, body: { code: 10003, message: 'Unknown Channel' } });
  });

  it('answers 400 50035 for malformed ids in the path', async () => {
    const good = randomSnowflake();
    for (const bad of BAD_IDS) {
      if (bad === '') continue; // an empty segment is another route (404)
      expect(await api.call('PUT', `/v1/channels/${bad}/members/${good}`)).toEqual({ status: 400, body: INVALID });
      expect(await api.call('PUT', `/v1/channels/${good}/members/${bad}`)).toEqual({ status: 400, body: INVALID });
      expect(await api.call('DELETE', `/v1/channels/${bad}/members/${good}`)).toEqual({ status: 400, body: INVALID });
      expect(await api.call('POST', `/v1/channels/${bad}/messages`, { author_id: good })).toEqual({ status: 400, body: INVALID });
      expect(await api.call('GET', `/v1/users/${bad}/read-states`)).toEqual({ status: 400, body: INVALID });
    }
    expect(await api.readStates(good)).toEqual([]);
  });
});

describe('POST messages', () => {
  it('posts as the author: 200 with the message id, dispatched like MESSAGE_CREATE', async () => {
    const [channel, author, member] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    await api.join(channel, author);
    await api.join(channel, member);
    const client = await connectUser(gateway, member);
    const update = client.waitFor((p) => p.t === 'READ_STATE_UPDATE');
    const result = await api.call('POST', `/v1/channels/${channel}/messages`, { author_id: author, mentions: [member], mention_everyone: false });
    expect(result.status).toBe(200);
    const messageId = (result.body as { message_id: string }).message_id;
    expect(messageId).toMatch(/^[1-9][0-9]{0,19}$/);
    expect((await update).d).toEqual({ channel_id: channel, last_message_id: messageId, last_acked_id: null, unread_count: 1, mention_count: 1 });
    expect(await api.readStates(author)).toEqual([{ channel_id: channel, last_message_id: messageId, last_acked_id: messageId, unread_count: 0, mention_count: 0 }]);
    await client.close();
  });

  it('answers 403 50001 for a non-member author and 404 10003 for an unknown channel', async () => {
    const [channel, member, stranger] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    await api.join(channel, member);
    expect(await api.call('POST', `/v1/channels/${channel}/messages`, { author_id: stranger })).toEqual({ status: 403, body: { code: 50001, message: 'Missing Access' } });
    expect(await api.call('POST', `/v1/channels/${randomSnowflake()}/messages`, { author_id: member })).toEqual({ status: 404, body: { code: 10003, message: 'Unknown Channel' } });
    expect(await api.readStates(member)).toEqual([{ channel_id: channel, last_message_id: null, last_acked_id: null, unread_count: 0, mention_count: 0 }]);
  });

  it('answers 400 50035 for every bad body', async () => {
    const [channel, author] = [randomSnowflake(), randomSnowflake()];
    await api.join(channel, author);
    const bodies: unknown[] = [
      '',
      'not json',
      '[]',
      '"x"',
      'null',
      '{}',
      { author_id: 5 },
      { author_id: 'abc' },
      { author_id: '18446744073709551616' },
      { author_id: author, mentions: 'x' },
      { author_id: author, mentions: [5] },
      { author_id: author, mentions: [author, 'x'] },
      { author_id: author, mention_everyone: 1 },
      '{"author_id":"1"'.repeat(3),
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
    ];
    for (const body of bodies) {
      expect(await api.call('POST', `/v1/channels/${channel}/messages`, body), JSON.stringify(body).slice(0, 40)).toEqual({ status: 400, body: INVALID });
    }
    const notUtf8 = await fetch(`${gateway.httpUrl}/v1/channels/${channel}/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer e2e-admin-token-with-enough-length' },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    });
    expect(notUtf8.status).toBe(400);
    const huge = await api.call('POST', `/v1/channels/${channel}/messages`, { author_id: author, pad: 'x'.repeat(200_000) });
    expect(huge.status).toBe(413);
    // None of them posted anything.
    expect(((await api.readStates(author)) as ReadState[])[0].last_message_id).toBeNull();
  });

  it('survives a request aborted halfway through its body', async () => {
    const channel = randomSnowflake();
    await new Promise<void>((resolve) => {
      const socket = connect(gateway.port, '127.0.0.1', () => {
        socket.write(
          `POST /v1/channels/${channel}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer e2e-admin-token-with-enough-length\r\nContent-Length: 1000\r\n\r\n{"author_id":`,
        );
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
    });
    expect((await fetch(`${gateway.httpUrl}/healthz`)).status).toBe(200);
  });
});

describe('GET read-states', () => {
  it('lists one read state per channel of the user, none for an unknown user', async () => {
    const [user, author] = [randomSnowflake(), randomSnowflake()];
    const channels = [randomSnowflake(), randomSnowflake()];
    for (const channel of channels) {
      await api.join(channel, user);
      await api.join(channel, author);
    }
    const message = await api.post(channels[1], author, { mention_everyone: true });
    const states = (await api.readStates(user)) as ReadState[];
    expect(states.sort((a, b) => (a.channel_id < b.channel_id ? -1 : 1))).toEqual(
      [
        { channel_id: channels[0], last_message_id: null, last_acked_id: null, unread_count: 0, mention_count: 0 },
        { channel_id: channels[1], last_message_id: message, last_acked_id: null, unread_count: 1, mention_count: 1 },
      ].sort((a, b) => (a.channel_id < b.channel_id ? -1 : 1)),
    );
    expect(await api.readStates(randomSnowflake())).toEqual([]);
  });
});

describe('operations endpoints', () => {
  it('answers /healthz and /readyz with 200, unknown paths with 404', async () => {
    expect((await fetch(`${gateway.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway.httpUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${gateway.httpUrl}/nope`)).status).toBe(404);
    expect((await api.call('GET', '/v1/nope')).status).toBe(404);
  });

  it('serves Prometheus metrics covering sessions, requests, latency, the engine, the store, GC and the event loop', async () => {
    const client = await connectUser(gateway, randomSnowflake());
    const response = await fetch(`${gateway.httpUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    for (const name of [
      'gateway_connections',
      'gateway_online_users',
      'gateway_requests_total{op="2"}',
      'gateway_request_to_dispatch_seconds_bucket',
      'gateway_closes_total',
      'readstate_engine_size',
      'readstate_cache_hit_ratio',
      'readstate_evictions_total',
      'readstate_dirty',
      'readstate_flushes_total',
      'readstate_store_write_errors_total',
      'readstate_store_load_errors_total',
      'nodejs_gc_duration_seconds',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(text, name).toContain(name);
    }
    expect(Number(/^gateway_connections (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    // Follows /readyz, which answered 200 above.
    expect(text).toMatch(/^gateway_ready 1$/m);
    await client.close();
  });
});
