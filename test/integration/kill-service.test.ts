// kill -9 of the service process loses at most the last flush window: every change it
// acknowledged more than flushDelayMs (plus one flush tick and the write) before it died is
// in Cassandra. This traffic is light enough for write-behind's trickle to keep up; a
// backlog could add up to a third of a window (see persistent-read-states.ts).

import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CassandraReadStateStore } from '../../src/store/cassandra-store.js';
import { messagesOfWindow } from '../../src/store/recent-window.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { type CompiledChild, compileForChildProcess } from '../support/compile-child.js';
import type { ServiceCommand, ServiceReply } from '../support/service-child.js';

const FLUSH_DELAY_MS = 2000;
/** One flush tick (flushDelayMs / 10) and the write itself, with room for a loaded machine. */
const WRITE_SLACK_MS = 1000;
const TRAFFIC_MS = 7000;

const keyspace = uniqueKeyspace('it_kill');
let compiled: CompiledChild;

beforeAll(async () => {
  compiled = await compileForChildProcess('test/support/service-child.ts');
});

afterAll(async () => {
  await compiled?.remove();
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

/** The child service and a request/reply call over its IPC channel. */
async function startChild(): Promise<{ child: ChildProcess; call: (command: ServiceCommand) => Promise<ServiceReply> }> {
  const child = fork(compiled.file, [], {
    env: { ...process.env, CASSANDRA_CONTACT_POINTS: DEV_CONTACT_POINTS.join(','), CASSANDRA_KEYSPACE: keyspace, READSTATE_FLUSH_DELAY_MS: String(FLUSH_DELAY_MS) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, (reply: ServiceReply) => void>();
  let nextId = 1;
  child.on('message', (message: ServiceReply) => waiting.get(message.id)?.(message));
  const [first] = (await once(child, 'message')) as [{ ready?: boolean }];
  if (first.ready !== true) throw new Error('service child did not start');
  const call = (command: ServiceCommand) =>
    new Promise<ServiceReply>((resolve) => {
      const id = nextId++;
      waiting.set(id, (reply) => {
        waiting.delete(id);
        resolve(reply);
      });
      child.send({ ...command, id });
    });
  return { child, call };
}

describe('kill -9 of the service', () => {
  it('loses at most the changes of the last flush window', async () => {
    const { child, call } = await startChild();
    const channelId = '9400000000000000001';
    const author = '9400000000000000010';
    const readers = Array.from({ length: 8 }, (_, i) => `94000000000000001${String(i).padStart(2, '0')}`);
    /** Per reader: acks in the order the service acknowledged them. */
    const acked = new Map<string, { messageId: string; at: number }[]>(readers.map((r) => [r, []]));
    const posted: { messageId: string; at: number }[] = [];

    for (const user of [author, ...readers]) expect((await call({ op: 'join', channelId, userId: user })).code).toBe(0);
    const trafficEnds = Date.now() + TRAFFIC_MS;
    for (let round = 0; Date.now() < trafficEnds; round++) {
      const reply = await call({ op: 'post', channelId, authorId: author, mentions: [readers[round % readers.length]] });
      expect(reply.code).toBe(0);
      posted.push({ messageId: reply.messageId!, at: Date.now() });
      // Each round some readers catch up to the newest message.
      await Promise.all(
        readers
          .filter((_, i) => (round + i) % 3 === 0)
          .map(async (userId) => {
            const ack = await call({ op: 'ack', channelId, userId, messageId: reply.messageId! });
            expect(ack.code).toBe(0);
            acked.get(userId)!.push({ messageId: reply.messageId!, at: Date.now() });
          }),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');

    const mustBeStoredBy = killedAt - FLUSH_DELAY_MS - WRITE_SLACK_MS;
    const store = await CassandraReadStateStore.connect({ contactPoints: DEV_CONTACT_POINTS, keyspace });
    try {
      let lostAcks = 0;
      for (const reader of readers) {
        const acks = acked.get(reader)!;
        const durable = acks.filter((a) => a.at <= mustBeStoredBy).at(-1);
        expect(durable, `reader ${reader} acked something early enough`).toBeDefined();
        const stored = await store.loadState(reader, channelId);
        const storedAck = BigInt(stored?.lastAckedId ?? '0');
        expect(storedAck).toBeGreaterThanOrEqual(BigInt(durable!.messageId));
        expect(storedAck).toBeLessThanOrEqual(BigInt(acks.at(-1)!.messageId));
        lostAcks += acks.filter((a) => BigInt(a.messageId) > storedAck).length;
      }
      const channel = await store.loadChannel(channelId);
      const durablePosts = posted.filter((p) => p.at <= mustBeStoredBy).length;
      expect(channel!.messageCount).toBeGreaterThanOrEqual(durablePosts);
      expect(messagesOfWindow(channel!.window).at(-1)!.id).toBe(posted[channel!.messageCount - 1].messageId);
      // Write-behind really held changes back: the newest ones died with the process.
      expect(lostAcks).toBeGreaterThan(0);
      expect(channel!.messageCount).toBeLessThan(posted.length);
    } finally {
      await store.close();
    }
  });
});
