// A Cassandra outage under traffic, on a second node used by this test alone: its process is
// stopped while updates keep coming and started again. The service keeps serving what it
// holds, readiness (the gateway's /readyz) goes false and back to true, and at the end every
// update made before, during and after the outage is in Cassandra.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CassandraReadStateStore } from '../../src/store/cassandra-store.js';
import { messagesOfWindow } from '../../src/store/recent-window.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { contactPointOf, dropKeyspace, type NodeSpec, startNode, stopNode, uniqueKeyspace, waitUntil } from '../support/cassandra-nodes.js';
import { CountingReadStateStore } from '../support/counting-store.js';

const FAULT: NodeSpec = { name: 'fault', address: '127.0.0.2', nativePort: 9142, jmxPort: 7299 };
const contactPoints = [contactPointOf(FAULT)];
const keyspace = uniqueKeyspace('it_outage');

type Phase = 'before' | 'during' | 'after';

beforeAll(async () => {
  await startNode(FAULT);
}, 300_000);

afterAll(async () => {
  // Leave the node as found by the next run: up long enough to drop the keyspace, then stopped.
  await startNode(FAULT);
  await dropKeyspace(contactPoints, keyspace);
  await stopNode(FAULT);
}, 300_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Cassandra outage under traffic', () => {
  it('keeps serving, reports not ready, and writes every update once the node is back', async () => {
    const cassandra = await CassandraReadStateStore.connect({ contactPoints, keyspace });
    const store = new CountingReadStateStore(cassandra);
    const states = new PersistentReadStates({ store, capacity: 10_000, flushDelayMs: 500, workerId: 3 });
    states.start();

    const channelId = '9500000000000000001';
    const author = '9500000000000000010';
    // Each phase has readers that ack only in it, so each phase's acks must reach Cassandra on their own.
    const readers: Record<Phase, string[]> = {
      before: ['9500000000000000101', '9500000000000000102', '9500000000000000103'],
      during: ['9500000000000000201', '9500000000000000202', '9500000000000000203'],
      after: ['9500000000000000301', '9500000000000000302', '18446744073709551615'],
    };
    const everyone = [...readers.before, ...readers.during, ...readers.after];
    const lastAck = new Map<string, string>();
    let phase: Phase = 'before';
    let posted = 0;
    let lastPosted = '';
    const failures: string[] = [];

    // Readiness as the gateway shows it (states.ready) and as the store reports it.
    const storeReadiness: boolean[] = [];
    const serviceReadiness: boolean[] = [];
    const record = (seen: boolean[], value: boolean) => seen.at(-1) !== value && seen.push(value);
    let polling = true;
    const poller = (async () => {
      while (polling) {
        record(storeReadiness, await cassandra.isReady());
        record(serviceReadiness, states.ready);
        await sleep(200);
      }
    })();

    let trafficOn = true;
    const runTraffic = async () => {
      for (let round = 0; trafficOn; round++) {
        const created = await states.createMessage(channelId, author, [everyone[round % everyone.length]], false);
        if (created.code !== 0) {
          failures.push(`post in phase ${phase}: ${created.code}`);
        } else {
          posted++;
          lastPosted = created.messageId;
          const reader = readers[phase][round % readers[phase].length];
          const acked = await states.ack(reader, channelId, created.messageId);
          if (acked.code === 0) lastAck.set(reader, created.messageId);
          else failures.push(`ack in phase ${phase}: ${acked.code}`);
        }
        await sleep(10);
      }
    };

    let traffic: Promise<void> | undefined;
    try {
      for (const user of [author, ...everyone]) expect((await states.join(channelId, user)).code).toBe(0);
      traffic = runTraffic();
      await waitUntil('the service is ready', () => states.ready, 10_000);
      await sleep(2000);

      await stopNode(FAULT);
      await waitUntil('the service reports not ready', () => !states.ready && storeReadiness.at(-1) === false, 20_000);
      // Acks from here on are made while the node is down or restarting.
      phase = 'during';
      await sleep(2000);
      await startNode(FAULT);
      await waitUntil('the service is ready again', () => states.ready && storeReadiness.at(-1) === true, 60_000);
      phase = 'after';
      await sleep(2000);
    } finally {
      trafficOn = false;
      await traffic;
      polling = false;
      await poller;
      await states.stop();
    }

    expect(failures).toEqual([]);
    expect(states.stats.writeErrors).toBeGreaterThan(0);
    expect(storeReadiness).toEqual([true, false, true]);
    // Not ready until its first probe, then ready, down with the node, and back.
    expect(serviceReadiness.slice(-3)).toEqual([true, false, true]);

    // Read back through a connection of its own: what Cassandra holds, not what a cache says.
    const reader = await CassandraReadStateStore.connect({ contactPoints, keyspace });
    try {
      for (const phaseReaders of Object.values(readers)) {
        for (const user of phaseReaders) {
          const view = states.viewOf(user, channelId)!;
          expect(lastAck.get(user), `${user} acked`).toBeDefined();
          expect(view.last_acked_id).toBe(lastAck.get(user));
          // No @everyone here: the stored mention bias is the mention count itself.
          expect(await reader.loadState(user, channelId)).toMatchObject({ lastAckedId: lastAck.get(user), mentionBias: view.mention_count });
        }
      }
      const channel = await reader.loadChannel(channelId);
      expect(channel).toMatchObject({ messageCount: posted });
      expect(messagesOfWindow(channel!.window).at(-1)!.id).toBe(lastPosted);
    } finally {
      await reader.close();
      await cassandra.close();
    }
  });
});
