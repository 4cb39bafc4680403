// CassandraReadStateStore against the real dev node: what is written is what comes back,
// exactly, and later calls win over earlier ones whatever order their requests run in. The
// same again through StoreThreadClient, the store on a worker thread as the gateway runs it
// (the compiled thread from dist/): records and errors cross the thread unchanged.

import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CassandraReadStateStore, type CassandraStoreOptions } from '../../src/store/cassandra-store.js';
import { emptyWindow, type WindowMessage, windowOfMessages } from '../../src/store/recent-window.js';
import type { ChannelRecord, ReadStateRecord, ReadStateStore } from '../../src/store/records.js';
import { StoreThreadClient, StoreThreadGone } from '../../src/store/store-thread-client.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { ensureBuilt } from '../support/gateway-harness.js';

const MAX_U64 = '18446744073709551615';
const TWO_63 = '9223372036854775808';
const MAX_I64 = '9223372036854775807';

const THREAD_URL = new URL('../../dist/src/store/store-thread.js', import.meta.url);

const connectors: Array<[string, (options: CassandraStoreOptions) => Promise<ReadStateStore>]> = [
  ['CassandraReadStateStore', (options) => CassandraReadStateStore.connect(options)],
  ['StoreThreadClient', (options) => StoreThreadClient.connect(options, THREAD_URL)],
];

beforeAll(async () => {
  await ensureBuilt();
});

function state(userId: string, channelId: string, lastAckedId: string | null, mentionBias = 0, pinnedAt = 0): ReadStateRecord {
  return { userId, channelId, lastAckedId, mentionBias, pinnedAt };
}

const byChannel = (a: ReadStateRecord, b: ReadStateRecord) => (BigInt(a.channelId) < BigInt(b.channelId) ? -1 : 1);

describe.each(connectors)('%s', (_, connect) => {
  const keyspace = uniqueKeyspace('it_store');
  let store: ReadStateStore;

  beforeAll(async () => {
    store = await connect({ contactPoints: DEV_CONTACT_POINTS, keyspace });
  });

  afterAll(async () => {
    await store?.close();
    await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
  });

  it('creates its schema in a new keyspace and is ready', async () => {
    expect(await store.isReady()).toBe(true);
  });

  it('round-trips read states exactly, ids above 2^63 included', async () => {
    const records = [
      state(MAX_U64, TWO_63, MAX_I64, 7, 4294967295),
      state(MAX_U64, MAX_U64, MAX_U64, -3, 1),
      state(MAX_U64, '1', null, -12),
      state(MAX_U64, MAX_I64, '1', 2147483647),
    ];
    await store.writeStates(records);
    for (const record of records) expect(await store.loadState(record.userId, record.channelId)).toEqual(record);
    expect((await store.loadUserStates(MAX_U64)).sort(byChannel)).toEqual([...records].sort(byChannel));
  });

  it('answers null and [] for what was never written', async () => {
    expect(await store.loadState('1000', '2000')).toBeNull();
    expect(await store.loadUserStates('1000')).toEqual([]);
    expect(await store.loadChannel('3000')).toBeNull();
  });

  it('writes idempotently and lets the later call win', async () => {
    const first = state('11', '21', '100', 1, 5);
    await store.writeStates([first]);
    await store.writeStates([first]);
    expect(await store.loadUserStates('11')).toEqual([first]);
    const second = state('11', '21', '105', -1, 6);
    await store.writeStates([second]);
    expect(await store.loadUserStates('11')).toEqual([second]);
  });

  it('loads a user with more states than fit in one page', async () => {
    const records = Array.from({ length: 6001 }, (_, i) => state('12', String(100_000 + i), String(500 + i), i % 5));
    await store.writeStates(records);
    const loaded = await store.loadUserStates('12');
    expect(loaded).toHaveLength(records.length);
    expect(loaded.sort(byChannel)).toEqual(records);
  });

  it('writes many users in one call, whatever mix of small and large partitions', async () => {
    const records = [
      ...Array.from({ length: 1000 }, (_, i) => state(String(30_000 + i), '71', String(700 + i), i % 3)),
      ...Array.from({ length: 120 }, (_, i) => state('31999', String(72 + i), String(800 + i))),
      ...Array.from({ length: 7 }, (_, i) => state(String(32_000 + i), '71', null)),
    ];
    await store.writeStates(records);
    for (const record of [records[0], records[537], records[999], records[1000], records[1119], records[1126]]) {
      expect(await store.loadState(record.userId, record.channelId)).toEqual(record);
    }
    expect((await store.loadUserStates('31999')).sort(byChannel)).toEqual(records.slice(1000, 1120));
  });

  it('deletes a membership, and a later write brings it back', async () => {
    await store.writeStates([state('13', '31', '300'), state('13', '32', '301')]);
    await store.deleteState('13', '31');
    expect(await store.loadState('13', '31')).toBeNull();
    expect(await store.loadUserStates('13')).toEqual([state('13', '32', '301')]);
    await store.writeStates([state('13', '31', null)]);
    expect(await store.loadState('13', '31')).toEqual(state('13', '31', null));
  });

  it('orders calls by when they were made, not by when their requests ran', async () => {
    // A store allowed one request at a time queues an older write behind 300 others; a
    // second store writes and deletes meanwhile. The queued writes run last and must lose.
    const slow = await connect({ contactPoints: DEV_CONTACT_POINTS, keyspace, maxInFlight: 1 });
    try {
      const filler = Array.from({ length: 300 }, (_, i) => state(String(20_000 + i), '41', '1'));
      const stale = slow.writeStates([...filler, state('14', '41', '400', 4), state('14', '42', '410', 4)]);
      await store.writeStates([state('14', '41', '401', 0)]);
      await store.deleteState('14', '42');
      await stale;
      expect(await store.loadUserStates('14')).toEqual([state('14', '41', '401', 0)]);
    } finally {
      await slow.close();
    }
  });

  it('rejects a malformed id before writing anything', async () => {
    await expect(store.writeStates([state('15', '51', '1'), state('15', '52x', '1')])).rejects.toThrow(/snowflake/);
    expect(await store.loadUserStates('15')).toEqual([]);
  });

  it('round-trips channels with a full window of messages and mentions', async () => {
    const window: WindowMessage[] = Array.from({ length: 1000 }, (_, i) => ({
      id: (BigInt(TWO_63) + BigInt(i) * 4096n).toString(),
      mentionsEveryone: i % 97 === 0,
      mentions: i % 97 === 0 ? [] : i % 3 === 0 ? [MAX_U64, String(i + 1)] : [],
    }));
    const channel: ChannelRecord = { channelId: MAX_U64, messageCount: 123_456_789_012, everyoneCount: 11, window: windowOfMessages(window) };
    const empty: ChannelRecord = { channelId: '61', messageCount: 0, everyoneCount: 0, window: emptyWindow() };
    await store.writeChannels([channel, empty]);
    expect(await store.loadChannel(MAX_U64)).toEqual(channel);
    expect(await store.loadChannel('61')).toEqual(empty);

    const next: ChannelRecord = { ...channel, messageCount: channel.messageCount + 1, window: windowOfMessages([...window.slice(1), { id: MAX_U64, mentionsEveryone: false, mentions: ['7'] }]) };
    await store.writeChannels([next]);
    expect(await store.loadChannel(MAX_U64)).toEqual(next);
  });
});

describe('CassandraReadStateStore batching', () => {
  it('writes thousands of users, and users with many states, without a warning from Cassandra', async () => {
    // Unlogged batches across more than 10 partitions draw Cassandra's warning, which the
    // driver passes on (and the store logs) for every batch.
    const keyspace = uniqueKeyspace('it_store_batches');
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const store = await CassandraReadStateStore.connect({ contactPoints: DEV_CONTACT_POINTS, keyspace, log });
    try {
      const records = Array.from({ length: 2000 }, (_, i) => state(String(40_000 + i), String(1 + (i % 7)), String(900 + i)));
      await store.writeStates(records);
      expect(await store.loadState('41999', String(1 + (1999 % 7)))).toEqual(records[1999]);
      // And users with many states each, as a user in many channels has: batches fill up with rows rather than partitions.
      const manyPerUser = Array.from({ length: 1600 }, (_, i) => state(String(50_000 + Math.floor(i / 16)), String(1 + (i % 16)), String(900 + i)));
      await store.writeStates(manyPerUser);
      expect(await store.loadUserStates('50099')).toHaveLength(16);
      expect(lines.filter((line) => line.includes('cassandra-driver'))).toEqual([]);
    } finally {
      await store.close();
      await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
    }
  });
});

describe.each(connectors)('%s without a reachable node', (_, connect) => {
  const keyspace = uniqueKeyspace('it_store_down');

  it('connects anyway, reports not ready and fails calls instead of hanging', async () => {
    // Nothing listens on port 1: the gateway must still start and answer /readyz with 503.
    const down = await connect({ contactPoints: ['127.0.0.1:1'], keyspace });
    try {
      expect(await down.isReady()).toBe(false);
      await expect(down.loadState('1', '2')).rejects.toThrow();
      await expect(down.writeStates([state('1', '2', null)])).rejects.toThrow();
      expect(await down.isReady()).toBe(false);
    } finally {
      await down.close();
    }
  });

  it('refuses a keyspace name that cannot be used in CQL', async () => {
    await expect(connect({ contactPoints: DEV_CONTACT_POINTS, keyspace: 'x; DROP' })).rejects.toThrow(/keyspace/);
  });
});

describe('StoreThreadClient once closed', () => {
  it('fails every call with StoreThreadGone and reports not ready, without hanging', async () => {
    const keyspace = uniqueKeyspace('it_store_closed');
    const store = await StoreThreadClient.connect({ contactPoints: DEV_CONTACT_POINTS, keyspace }, THREAD_URL);
    try {
      expect(await store.isReady()).toBe(true);
      await store.close();
      await expect(store.loadState('1', '2')).rejects.toBeInstanceOf(StoreThreadGone);
      await expect(store.writeStates([state('1', '2', null)])).rejects.toBeInstanceOf(StoreThreadGone);
      expect(await store.isReady()).toBe(false);
    } finally {
      await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
    }
  });
});
