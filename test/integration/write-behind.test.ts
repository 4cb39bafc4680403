// Engine + PersistentReadStates + CassandraReadStateStore against the real dev node:
// write-behind timing and coalescing, eviction writes, load on miss, and a restart of the
// service that must show every user exactly the read states they had.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CassandraReadStateStore } from '../../src/store/cassandra-store.js';
import { PersistentReadStates, type ReadStateJson } from '../../src/store/persistent-read-states.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace, waitUntil } from '../support/cassandra-nodes.js';
import { CountingReadStateStore } from '../support/counting-store.js';

const keyspace = uniqueKeyspace('it_write_behind');
let cassandra: CassandraReadStateStore;

beforeAll(async () => {
  cassandra = await CassandraReadStateStore.connect({ contactPoints: DEV_CONTACT_POINTS, keyspace });
});

afterAll(async () => {
  await cassandra?.close();
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

interface ServiceOptions {
  flushDelayMs: number;
  capacity?: number;
  windowSize?: number;
  store?: CassandraReadStateStore;
}

function startService(options: ServiceOptions) {
  const store = new CountingReadStateStore(options.store ?? cassandra);
  const states = new PersistentReadStates({
    store,
    capacity: options.capacity ?? 10_000,
    flushDelayMs: options.flushDelayMs,
    windowSize: options.windowSize,
    workerId: 7,
  });
  states.start();
  return { store, states };
}

async function post(states: PersistentReadStates, channelId: string, authorId: string, mentions: string[] = [], everyone = false): Promise<string> {
  const result = await states.createMessage(channelId, authorId, mentions, everyone);
  if (result.code !== 0) throw new Error(`create in ${channelId} by ${authorId} failed with ${result.code}`);
  return result.messageId;
}

async function ack(states: PersistentReadStates, userId: string, channelId: string, messageId: string): Promise<ReadStateJson> {
  const result = await states.ack(userId, channelId, messageId);
  if (result.code !== 0) throw new Error(`ack by ${userId} in ${channelId} failed with ${result.code}`);
  return result.state;
}

async function join(states: PersistentReadStates, channelId: string, userId: string): Promise<void> {
  const result = await states.join(channelId, userId);
  if (result.code !== 0) throw new Error(`join of ${userId} to ${channelId} failed with ${result.code}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('write-behind on Cassandra', () => {
  it('writes a changed read state once, flushDelayMs after its first change, however often it changed', async () => {
    const flushDelayMs = 2000;
    const { store, states } = startService({ flushDelayMs });
    const channel = '9300000000000000001';
    const [author, reader] = ['9300000000000000011', '9300000000000000012'];
    try {
      await join(states, channel, author);
      await join(states, channel, reader);
      expect(store.writesOf(reader, channel)).toHaveLength(1); // the membership, written through

      // Ten changes to the reader's state inside one window: five mentions, five acks.
      const firstChange = Date.now();
      let last = '';
      for (let i = 0; i < 5; i++) {
        last = await post(states, channel, author, [reader]);
        await ack(states, reader, channel, last);
      }
      await sleep(flushDelayMs - 400 - (Date.now() - firstChange));
      expect(store.writesOf(reader, channel)).toHaveLength(1);

      await waitUntil('the reader state is flushed', () => store.writesOf(reader, channel).length > 1, 5000, 10);
      const flush = store.writesOf(reader, channel)[1];
      expect(flush.at - firstChange).toBeGreaterThanOrEqual(flushDelayMs);
      // One flush tick (flushDelayMs / 10) plus slack for a loaded machine: well before a second window.
      expect(flush.at - firstChange).toBeLessThan(flushDelayMs + 1000);
      expect(flush.record).toMatchObject({ lastAckedId: last });
      await waitUntil('the flush is confirmed', () => states.stats.pendingWrites === 0, 5000, 10);
      expect(await cassandra.loadState(reader, channel)).toMatchObject({ lastAckedId: last });

      // Nothing changed since: the next window writes nothing.
      await sleep(flushDelayMs + 500);
      expect(store.writesOf(reader, channel)).toHaveLength(2);
      expect(store.writesOf(author, channel)).toHaveLength(2);
    } finally {
      await states.stop();
    }
  });

  it('writes an evicted changed state at once and loads it back on the next miss', async () => {
    const { store, states } = startService({ flushDelayMs: 60_000, capacity: 3 });
    const channel = '9300000000000000002';
    const [author, mentioned, other] = ['9300000000000000021', '9300000000000000022', '9300000000000000023'];
    try {
      for (const user of [author, mentioned, other]) await join(states, channel, user);
      const message = await post(states, channel, author, [mentioned]);
      expect(store.writesOf(mentioned, channel)).toHaveLength(1);

      // Three newcomers take every slot: the dirty states leave the table and must be written now, not in 60 s.
      const evictedAt = Date.now();
      for (let i = 0; i < 3; i++) await join(states, channel, `930000000000000003${i}`);
      await waitUntil('the evicted states are written', () => states.stats.pendingWrites === 0 && store.writesOf(mentioned, channel).length === 2, 5000, 10);
      expect(Date.now() - evictedAt).toBeLessThan(2000);
      expect(states.viewOf(mentioned, channel)).toBeUndefined();
      expect(await cassandra.loadState(mentioned, channel)).toMatchObject({ lastAckedId: null, mentionBias: 1 });

      const loadsBefore = store.stateLoads;
      expect(await states.view(mentioned, channel)).toEqual({ channel_id: channel, last_message_id: message, last_acked_id: null, unread_count: 1, mention_count: 1 });
      expect(store.stateLoads).toBe(loadsBefore + 1);
      expect(await ack(states, mentioned, channel, message)).toMatchObject({ unread_count: 0, mention_count: 0 });
    } finally {
      await states.stop();
    }
  });

  it('shows every user the same read states after a restart, and counts stay exact afterwards', async () => {
    // A small window makes some acks fall behind it (unread capped at the window) and checks
    // that the window itself, with whom each message mentions, is what comes back.
    const windowSize = 50;
    const busy = '9300000000000000100';
    const quiet = '9300000000000000200';
    const empty = '18446744073709551615';
    const authors = ['9300000000000000101', '9300000000000000102', '9300000000000000103'];
    // Readers never post. R0 acks behind the window, R1 inside it, R2 not before the
    // restart, R3 never, and leaves `quiet`.
    const [r0, r1, r2, r3] = ['9300000000000000111', '9300000000000000112', '9300000000000000113', '18446744073709551614'];
    const users = [...authors, r0, r1, r2, r3];
    const log: { id: string; mentions: string[]; everyone: boolean }[] = [];
    const mentionsOf = (user: string, from: number) => log.slice(from).filter((m) => m.everyone || m.mentions.includes(user)).length;
    const busyState = (views: ReadStateJson[]) => views.find((s) => s.channel_id === busy)!;

    const before = new Map<string, ReadStateJson[]>();
    const first = startService({ flushDelayMs: 30_000, windowSize });
    try {
      for (const channel of [busy, quiet]) for (const user of users) await join(first.states, channel, user);
      await join(first.states, empty, r3);
      let seed = 12345;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      for (const [channel, count] of [[busy, 120], [quiet, 30]] as const) {
        for (let i = 0; i < count; i++) {
          const author = authors[i % authors.length];
          const everyone = i % 7 === 3;
          const mentions = everyone ? [] : users.filter((u) => u !== author && random() < 0.3);
          const id = await post(first.states, channel, author, mentions, everyone);
          if (channel === busy) log.push({ id, mentions, everyone });
          if (i % 5 === 4) await ack(first.states, authors[(i + 1) % authors.length], channel, id);
        }
      }
      await ack(first.states, r0, busy, log[10].id);
      await ack(first.states, r1, busy, log[100].id);
      expect(await first.states.leave(quiet, r3)).toEqual({ code: 0, removed: true });

      for (const user of users) before.set(user, sortByChannel(await first.states.loadUser(user)));
      // The counts the protocol defines, from the log of what was posted.
      expect(busyState(before.get(r0)!)).toMatchObject({ unread_count: windowSize, mention_count: mentionsOf(r0, 120 - windowSize) });
      expect(busyState(before.get(r1)!)).toMatchObject({ unread_count: 19, mention_count: mentionsOf(r1, 101) });
      expect(busyState(before.get(r3)!)).toMatchObject({ unread_count: 120, mention_count: mentionsOf(r3, 0) });
      expect(before.get(r3)!.map((s) => s.channel_id)).toEqual(sortIds([busy, empty]));
      // Nothing has waited 30 s: only stop() can have written the changes.
    } finally {
      await first.states.stop();
    }

    const restartedStore = await CassandraReadStateStore.connect({ contactPoints: DEV_CONTACT_POINTS, keyspace });
    const second = startService({ flushDelayMs: 30_000, windowSize, store: restartedStore });
    try {
      for (const user of users) expect(sortByChannel(await second.states.loadUser(user))).toEqual(before.get(user));

      // Acking a message from before the restart counts from the persisted window and mentions.
      expect(await ack(second.states, r2, busy, log[110].id)).toEqual({
        channel_id: busy,
        last_message_id: log[119].id,
        last_acked_id: log[110].id,
        unread_count: 9,
        mention_count: mentionsOf(r2, 111),
      });
      const m1 = await post(second.states, busy, authors[0], [r0, r1]);
      const m2 = await post(second.states, busy, authors[1], [], true);
      expect(BigInt(m1)).toBeGreaterThan(BigInt(log[119].id));
      const after = async (user: string) => busyState(await second.states.loadUser(user));
      const was = (user: string) => busyState(before.get(user)!);
      expect(await after(r0)).toMatchObject({ last_message_id: m2, unread_count: windowSize, mention_count: was(r0).mention_count + 2 });
      expect(await after(r1)).toMatchObject({ unread_count: 21, mention_count: was(r1).mention_count + 2 });
      expect(await after(r2)).toMatchObject({ unread_count: 11, mention_count: mentionsOf(r2, 111) + 1 });
      expect(await after(r3)).toMatchObject({ unread_count: 122, mention_count: was(r3).mention_count + 1 });
      expect(await after(authors[2])).toMatchObject({ unread_count: was(authors[2]).unread_count + 2 });
    } finally {
      await second.states.stop();
      await restartedStore.close();
    }
  });
});

function sortIds(ids: string[]): string[] {
  return ids.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
}

function sortByChannel(states: ReadStateJson[]): ReadStateJson[] {
  return states.sort((a, b) => (BigInt(a.channel_id) < BigInt(b.channel_id) ? -1 : 1));
}
