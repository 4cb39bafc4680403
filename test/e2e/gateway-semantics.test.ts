// docs/protocol.md "ReadState" and "Events and semantics" over real sockets: unread and mention
// counts, every device told, nonces only to the requester, acks never backwards, exact
// counts, membership changes, isolation between users.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayClient, ReadState, ServerPayload } from '../../src/client/gateway-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { AdminApi, byChannel, connectUser, type GatewayProcess, randomSnowflake, startGateway } from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_semantics');
let gateway: GatewayProcess;
let api: AdminApi;

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_RATE_LIMIT: '1000000' });
  api = new AdminApi(gateway.httpUrl);
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

/**
 * Everything the client received after its READY, once a heartbeat sent now is answered:
 * the server answers in order, so whatever it sent before is in.
 */
async function settle(client: GatewayClient): Promise<ServerPayload[]> {
  const ack = client.waitFor((p) => p.op === 11);
  client.heartbeat();
  await ack;
  const seen = client.received.filter((p) => p.op === 0 && p.t !== 'READY');
  client.received.length = 0;
  return seen;
}

function updates(payloads: ServerPayload[]): Array<ReadState & { nonce?: unknown }> {
  return payloads.filter((p) => p.t === 'READ_STATE_UPDATE').map((p) => p.d as ReadState & { nonce?: unknown });
}

async function channelWith(...members: string[]): Promise<string> {
  const channel = randomSnowflake();
  for (const member of members) await api.join(channel, member);
  return channel;
}

describe('MESSAGE_CREATE', () => {
  it('counts unread for every other member, mentions for mentioned members, acks the author, and tells every device', async () => {
    const [author, mentioned, plain, outsider] = [randomSnowflake(), randomSnowflake(), randomSnowflake(), randomSnowflake()];
    const channel = await channelWith(author, mentioned, plain);
    await api.join(await channelWith(outsider), outsider);
    const a1 = await connectUser(gateway, author);
    const a2 = await connectUser(gateway, author, 'msgpack');
    const m1 = await connectUser(gateway, mentioned, 'msgpack');
    const m2 = await connectUser(gateway, mentioned);
    const p1 = await connectUser(gateway, plain);
    const o1 = await connectUser(gateway, outsider);
    for (const c of [a1, a2, m1, m2, p1, o1]) await settle(c);

    // Duplicates, the author and a non-member among the mentions are ignored.
    const state = await a1.createMessage({ channel_id: channel, mentions: [mentioned, mentioned, author, outsider] });
    const messageId = state.last_message_id!;
    expect(state).toEqual({ channel_id: channel, last_message_id: messageId, last_acked_id: messageId, unread_count: 0, mention_count: 0 });

    const a1Updates = updates(await settle(a1));
    expect(a1Updates).toHaveLength(1);
    expect(a1Updates[0].nonce).toEqual(expect.any(Number));
    expect(updates(await settle(a2))).toEqual([state]);
    const mentionedState = { channel_id: channel, last_message_id: messageId, last_acked_id: null, unread_count: 1, mention_count: 1 };
    expect(updates(await settle(m1))).toEqual([mentionedState]);
    expect(updates(await settle(m2))).toEqual([mentionedState]);
    expect(updates(await settle(p1))).toEqual([{ ...mentionedState, mention_count: 0 }]);
    expect(await settle(o1)).toEqual([]);

    // A second message: counts grow; sequences go on per session.
    const second = await a2.createMessage({ channel_id: channel, mention_everyone: true });
    expect(updates(await settle(m1))).toEqual([{ ...mentionedState, last_message_id: second.last_message_id, unread_count: 2, mention_count: 2 }]);
    expect(updates(await settle(p1))).toEqual([{ ...mentionedState, last_message_id: second.last_message_id, unread_count: 2, mention_count: 1 }]);
    expect(m1.lastSequence).toBe(3);
    expect(updates(await settle(a1))).toEqual([second]);
    for (const c of [a1, a2, m1, m2, p1, o1]) await c.close();
  });

  it('counts an @everyone message with explicit mentions once', async () => {
    const [author, member] = [randomSnowflake(), randomSnowflake()];
    const channel = await channelWith(author, member);
    const client = await connectUser(gateway, member);
    await api.post(channel, author, { mentions: [member], mention_everyone: true });
    await api.post(channel, author, { mention_everyone: true });
    await api.post(channel, author);
    const seen = updates(await settle(client));
    expect(seen.map((s) => [s.unread_count, s.mention_count])).toEqual([
      [1, 1],
      [2, 2],
      [3, 2],
    ]);
    await client.close();
  });

  it('creates a new message every time, with ids that grow', async () => {
    const author = randomSnowflake();
    const channel = await channelWith(author);
    const client = await connectUser(gateway, author, 'msgpack');
    const ids: bigint[] = [];
    for (let i = 0; i < 20; i++) ids.push(BigInt((await client.createMessage({ channel_id: channel })).last_message_id!));
    expect(new Set(ids).size).toBe(20);
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    await client.close();
  });
});

describe('MESSAGE_ACK', () => {
  it('recomputes counts from the definitions, never moves backwards, and tells every session of the user only', async () => {
    const [author, reader] = [randomSnowflake(), randomSnowflake()];
    const channel = await channelWith(author, reader);
    const ids = [
      await api.post(channel, author),
      await api.post(channel, author, { mentions: [reader] }),
      await api.post(channel, author),
      await api.post(channel, author, { mentions: [reader] }),
      await api.post(channel, author, { mention_everyone: true }),
    ];
    const r1 = await connectUser(gateway, reader);
    const r2 = await connectUser(gateway, reader, 'msgpack');
    const a1 = await connectUser(gateway, author);
    expect(r1.ready!.read_states).toEqual([{ channel_id: channel, last_message_id: ids[4], last_acked_id: null, unread_count: 5, mention_count: 3 }]);

    const afterThird = await r1.ack(channel, ids[2]);
    expect(afterThird).toEqual({ channel_id: channel, last_message_id: ids[4], last_acked_id: ids[2], unread_count: 2, mention_count: 2 });
    expect(updates(await settle(r2))).toEqual([afterThird]);

    // Older than the current ack: nothing changes, the state still comes back with the nonce.
    expect(await r2.ack(channel, ids[0])).toEqual(afterThird);
    // The same ack again is harmless.
    expect(await r1.ack(channel, ids[2])).toEqual(afterThird);

    const all = await r2.ack(channel, ids[4]);
    expect(all).toEqual({ channel_id: channel, last_message_id: ids[4], last_acked_id: ids[4], unread_count: 0, mention_count: 0 });
    const r1Seen = updates(await settle(r1));
    expect(r1Seen.at(-1)).toEqual(all);
    expect(r1Seen.filter((s) => s.nonce !== undefined)).toHaveLength(2);
    expect(await settle(a1)).toEqual([]);
    // r2: its own two acks with their nonces, r1's repeated ack without one.
    const r2Seen = updates(await settle(r2));
    expect(r2Seen.map((s) => s.nonce !== undefined)).toEqual([true, false, true]);
    expect(r2Seen[1]).toEqual(afterThird);
    for (const c of [r1, r2, a1]) await c.close();
  });

  it('keeps unread counts exact for acks among the 1,000 newest messages and reports 1000 beyond', async () => {
    const [author, reader, never, behind] = [randomSnowflake(), randomSnowflake(), randomSnowflake(), randomSnowflake()];
    const channel = await channelWith(author, reader, never, behind);
    const client = await connectUser(gateway, author, 'msgpack');
    const ids: string[] = [];
    // Pipelined on one session: answered in order.
    const pending: Array<Promise<ReadState>> = [];
    for (let i = 0; i < 1200; i++) pending.push(client.createMessage({ channel_id: channel, mentions: i % 100 === 0 ? [reader] : [] }));
    for (const state of await Promise.all(pending)) ids.push(state.last_message_id!);
    expect(new Set(ids).size).toBe(1200);

    const reading = await connectUser(gateway, reader);
    expect(await reading.ack(channel, ids[299])).toMatchObject({ unread_count: 900, mention_count: 9 });
    expect(await reading.ack(channel, ids[1198])).toMatchObject({ unread_count: 1, mention_count: 0 });
    // Nothing acked (joined while the channel was empty): all of them.
    expect(await api.readStates(never)).toEqual([{ channel_id: channel, last_message_id: ids[1199], last_acked_id: null, unread_count: 1200, mention_count: 0 }]);
    // Acked before the 1,000 newest: "999+".
    const lagging = await connectUser(gateway, behind);
    expect(await lagging.ack(channel, ids[100])).toMatchObject({ unread_count: 1000 });
    for (const c of [client, reading, lagging]) await c.close();
  });
});

describe('membership', () => {
  it('tells online sessions about a join (fully read) and a leave, after which the channel is out of reach', async () => {
    const [author, user] = [randomSnowflake(), randomSnowflake()];
    const channel = await channelWith(author);
    const message = await api.post(channel, author);
    const u1 = await connectUser(gateway, user);
    const u2 = await connectUser(gateway, user, 'msgpack');

    await api.join(channel, user);
    const joined = { channel_id: channel, last_message_id: message, last_acked_id: message, unread_count: 0, mention_count: 0 };
    expect(updates(await settle(u1))).toEqual([joined]);
    expect(updates(await settle(u2))).toEqual([joined]);

    // Now a member: messages reach the new member's sessions.
    const next = await api.post(channel, author);
    expect(updates(await settle(u1))).toEqual([{ ...joined, last_message_id: next, unread_count: 1 }]);
    // Joining again keeps the state (204, no reset, no dispatch).
    await api.join(channel, user);
    expect(await settle(u2)).toEqual([{ op: 0, t: 'READ_STATE_UPDATE', s: 3, d: { ...joined, last_message_id: next, unread_count: 1 } }]);
    expect(((await api.readStates(user)) as ReadState[])[0].unread_count).toBe(1);

    expect((await api.leave(channel, user)).status).toBe(204);
    for (const c of [u1, u2]) {
      const seen = await settle(c);
      expect(seen.map((p) => [p.t, p.d])).toEqual([['READ_STATE_DELETE', { channel_id: channel }]]);
    }
    await expect(u1.ack(channel, next)).rejects.toMatchObject({ code: 50001 });
    await expect(u2.createMessage({ channel_id: channel })).rejects.toMatchObject({ code: 50001 });
    // Messages in the channel no longer reach the former member.
    await api.post(channel, author);
    expect(await settle(u1)).toEqual([]);
    expect(await api.readStates(user)).toEqual([]);
    const again = await connectUser(gateway, user);
    expect(again.ready!.read_states).toEqual([]);
    for (const c of [u1, u2, again]) await c.close();
  });
});

describe('isolation between users', () => {
  it('shows a user only its own read states and never lets it touch a channel it is not a member of', async () => {
    const [alice, bob] = [randomSnowflake(), randomSnowflake()];
    const aliceOnly = await channelWith(alice);
    const shared = await channelWith(alice, bob);
    const message = await api.post(aliceOnly, alice);
    await api.post(shared, alice);
    const bobClient = await connectUser(gateway, bob);
    expect(byChannel(bobClient.ready!.read_states).map((s) => s.channel_id)).toEqual([shared]);
    await expect(bobClient.ack(aliceOnly, message)).rejects.toMatchObject({ code: 50001 });
    await expect(bobClient.createMessage({ channel_id: aliceOnly, mentions: [alice] })).rejects.toMatchObject({ code: 50001 });
    // Alice's state in her channel is untouched by Bob's attempts.
    const aliceStates = byChannel((await api.readStates(alice)) as ReadState[]);
    expect(aliceStates.find((s) => s.channel_id === aliceOnly)).toMatchObject({ last_acked_id: message, unread_count: 0 });
    await bobClient.close();
  });
});

describe('ordering', () => {
  it('answers the requests of one session in the order they were sent', async () => {
    const author = randomSnowflake();
    const channel = await channelWith(author);
    const client = await connectUser(gateway, author);
    const message = await api.post(channel, author);
    const nonces: number[] = [];
    client.onDispatch((event, d) => {
      const nonce = (d as { nonce?: number }).nonce;
      if (event === 'READ_STATE_UPDATE' && nonce !== undefined) nonces.push(nonce);
    });
    const requests: Array<Promise<unknown>> = [];
    for (let i = 0; i < 200; i++) requests.push(i % 3 === 0 ? client.createMessage({ channel_id: channel }) : client.ack(channel, message));
    await Promise.all(requests);
    expect(nonces).toEqual([...nonces].sort((a, b) => a - b));
    expect(nonces).toHaveLength(200);
    await client.close();
  });
});
