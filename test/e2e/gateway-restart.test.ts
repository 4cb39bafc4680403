// docs/protocol.md "Operations": SIGTERM closes sockets with 1001, writes every changed read
// state and exits 0; a restart on the same Cassandra data shows every user the same read
// states, and counts stay exact afterwards. The expected states come from a small model
// of the protocol's definitions, checked before the stop, after the restart, and after
// more traffic on the restarted gateway.

import { afterAll, describe, expect, it } from 'vitest';
import type { GatewayClient, ReadState } from '../../src/client/gateway-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { ProtocolModel, seeded } from '../support/protocol-model.js';
import { AdminApi, byChannel, connectUser, type GatewayProcess, randomSnowflake, startGateway } from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_restart');

afterAll(async () => {
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});


const users = Array.from({ length: 6 }, () => randomSnowflake());
const channels = Array.from({ length: 4 }, () => randomSnowflake());
const model = new ProtocolModel();

/** Random posts (gateway and HTTP), acks and joins, applied to the gateway and the model alike. */
async function traffic(gateway: GatewayProcess, operations: number, seed: number): Promise<void> {
  const api = new AdminApi(gateway.httpUrl);
  const random = seeded(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const clients = new Map<string, GatewayClient>();
  for (const user of users) clients.set(user, await connectUser(gateway, user, random() < 0.5 ? 'json' : 'msgpack'));
  for (let i = 0; i < operations; i++) {
    const channel = pick(channels);
    const members = [...model.members.get(channel)!];
    const roll = random();
    if (roll < 0.1) {
      const user = pick(users);
      await api.join(channel, user);
      model.join(channel, user);
    } else if (roll < 0.6) {
      const author = pick(members);
      const mentions = random() < 0.5 ? [pick(users), pick(users)] : [];
      const everyone = random() < 0.1;
      const id =
        random() < 0.5
          ? (await clients.get(author)!.createMessage({ channel_id: channel, mentions, mention_everyone: everyone })).last_message_id!
          : await api.post(channel, author, { mentions, mention_everyone: everyone });
      model.post(channel, author, id, mentions, everyone);
    } else {
      const messages = model.messages.get(channel)!;
      if (messages.length === 0) continue;
      const user = pick(members);
      const id = pick(messages).id.toString();
      await clients.get(user)!.ack(channel, id);
      model.ack(channel, user, id);
    }
  }
  for (const client of clients.values()) await client.close();
}

async function expectModelStates(gateway: GatewayProcess): Promise<void> {
  const api = new AdminApi(gateway.httpUrl);
  for (const user of users) {
    expect(byChannel((await api.readStates(user)) as ReadState[]), `user ${user}`).toEqual(model.statesOf(user));
    const client = await connectUser(gateway, user);
    expect(byChannel(client.ready!.read_states)).toEqual(model.statesOf(user));
    await client.close();
  }
}

describe('restart', () => {
  it('closes sessions with 1001, writes everything on SIGTERM, and shows the same exact states after a restart', async () => {
    // A long flush delay: only the stop itself writes the read states.
    const env = { CASSANDRA_KEYSPACE: keyspace, READSTATE_FLUSH_DELAY_MS: '600000', GATEWAY_RATE_LIMIT: '100000' };
    const first = await startGateway(env);
    const api = new AdminApi(first.httpUrl);
    for (const channel of channels) {
      for (const user of users.slice(0, 3)) {
        await api.join(channel, user);
        model.join(channel, user);
      }
    }
    await traffic(first, 250, 1);
    await expectModelStates(first);

    const online = [await connectUser(first, users[0]), await connectUser(first, users[1], 'msgpack')];
    expect(await first.stop('SIGTERM')).toBe(0);
    for (const client of online) expect((await client.closed).code).toBe(1001);

    const second = await startGateway(env);
    try {
      await expectModelStates(second);
      await traffic(second, 150, 2);
      await expectModelStates(second);
    } finally {
      expect(await second.stop('SIGINT')).toBe(0);
    }
  });
});
