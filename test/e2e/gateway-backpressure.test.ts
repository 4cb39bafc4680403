// docs/protocol.md: "A slow consumer whose unsent data passes the backpressure limit is closed;
// the server's memory stays bounded." A session that stops reading while its channel is
// busy is cut off; a reading member of the same channel gets every update.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { AdminApi, connectUser, type GatewayProcess, metricValue, RawSocket, randomSnowflake, startGateway, userToken } from '../support/gateway-harness.js';

const keyspace = uniqueKeyspace('e2e_backpressure');
let gateway: GatewayProcess;

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace, GATEWAY_RATE_LIMIT: '1000000000' });
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

describe('backpressure', () => {
  it('closes a session that stops reading once its unsent data passes the limit, and serves the others', async () => {
    const api = new AdminApi(gateway.httpUrl);
    const [author, reader, sleeper] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
    const channel = randomSnowflake();
    for (const user of [author, reader, sleeper]) await api.join(channel, user);

    const slow = new RawSocket(gateway.wsUrl);
    await slow.waitFrames(1);
    slow.send(JSON.stringify({ op: 2, d: { token: await userToken(sleeper) } }));
    await slow.waitFrames(2);
    slow.pause();

    const writer = await connectUser(gateway, author, 'msgpack');
    const listener = await connectUser(gateway, reader);
    let seen = 0;
    listener.onDispatch((event) => {
      if (event === 'READ_STATE_UPDATE') seen++;
    });
    const rssBefore = await metricValue(gateway, 'process_resident_memory_bytes');

    // Each update is ~200 bytes: kernel buffers (a few MB) plus the 1 MiB limit fill within 100k.
    let posted = 0;
    while (posted < 100_000 && (await metricValue(gateway, 'gateway_closes_total{code="1006"}').catch(() => 0)) === 0) {
      const batch = Array.from({ length: 2000 }, () => writer.createMessage({ channel_id: channel }));
      await Promise.all(batch);
      posted += batch.length;
    }
    expect(posted).toBeLessThan(100_000);
    const rssAfter = await metricValue(gateway, 'process_resident_memory_bytes');
    expect(rssAfter - rssBefore).toBeLessThan(200 * 1024 * 1024);

    // The reader got everything; the sleeper, woken, finds its socket cut short.
    await listener.waitFor(() => seen === posted, 30_000).catch(() => undefined);
    expect(seen).toBe(posted);
    slow.resume();
    expect((await slow.closed).code).toBe(1006);
    expect(slow.frames.length - 2).toBeLessThan(posted);
    await writer.close();
    await listener.close();
  });
});
