// ReadStateStore on Apache Cassandra (schema in cassandra-schema.ts).
//
// - Start-up never fails because Cassandra is down: connect() makes one attempt at the
//   schema and returns the store either way. Every later call (a read, a write, isReady)
//   makes another attempt while the schema is not known to be in place, so the service
//   recovers on its own and /readyz follows isReady(). The driver reconnects to known hosts
//   in the background; its reconnection delay is capped at 5 s (its default grows to 10 min).
// - Every statement is prepared; prepared statements carry the partition key, so the
//   driver's default load-balancing policy (DC-aware, token-aware) sends each request to a
//   replica of its partition in the local data center.
// - A write's timestamp is the moment writeStates/writeChannels/deleteState is called, taken
//   before the request waits for a slot: calls on one key take effect in call order, however
//   their requests overtake each other or get retried. So a retried older write never overwrites
//   a newer one, and a write of a state captured before a leave never brings it back.
// - Requests in flight are bounded (InFlightLimit), reads and writes apart: a load on miss
//   never queues behind a flush of thousands of rows. writeStates sends unlogged batches of
//   up to 10 users' partitions that share their replicas (no batch log, and every mutation
//   lands on the node the batch goes to, as with one request per partition). A write
//   call may ask for fewer of its own requests in flight (WriteOptions): write-behind uses
//   that to trickle instead of burst.
// - One consistency level for reads, writes and the readiness probe (CASSANDRA_CONSISTENCY),
//   LOCAL_QUORUM by default: with RF 1 it is ONE; with RF 3 two replicas of the local data
//   center answer each request, so one can be down, and as any two of three overlap, a
//   restarted service reads back what it wrote.

import cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import type { CassandraConsistency } from '../config.js';
import { type Long, longToSnowflake, snowflakeToLong } from './cassandra-ids.js';
import { applySchema, assertKeyspaceName, DEFAULT_REPLICATION, type Replication } from './cassandra-schema.js';
import { decodeWindow, encodeWindow } from './cassandra-window-blob.js';
import { InFlightLimit } from './in-flight-limit.js';
import { emptyWindow } from './recent-window.js';
import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from './records.js';
import { nextWriteMicros } from './write-clock.js';

const { Client, policies, types } = cassandra;
type Client = cassandra.Client;
type Row = cassandra.types.Row;

export interface CassandraStoreOptions {
  /** host or host:port (default port 9042). */
  contactPoints: string[];
  keyspace: string;
  /** Data center of the nodes to use, as the snitch names it (SimpleSnitch: datacenter1). */
  localDataCenter?: string;
  /** Consistency level of every read and write (default LOCAL_QUORUM). */
  consistency?: CassandraConsistency;
  /** Replicas in the local data center when the store creates the keyspace (default 1). */
  replicationFactor?: number;
  log?: Logger;
  /** Reads in flight at once, and writes in flight at once (default 32 each). */
  maxInFlight?: number;
}

/** Consistency levels by their CQL names: exactly the ones config.ts accepts, checked by the type. */
const CONSISTENCIES: Record<CassandraConsistency, number> = {
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  LOCAL_ONE: types.consistencies.localOne,
};

const DEFAULT_MAX_IN_FLIGHT = 32;
/**
 * Rows per unlogged batch: keeps a batch under Cassandra's 5 KiB batch-size warning, which the
 * node logs and the driver reports for every batch over it. Cassandra counts about 110 bytes
 * a row (48 rows of three users: 5,319 bytes), so 50 rows passed it; 40 stay under it, over
 * one partition or ten.
 */
const MAX_BATCH_ROWS = 40;
/**
 * Partitions per unlogged batch. One request per partition, Cassandra's usual advice, costs
 * the node about three times the CPU per row of a batch of ten and the driver twice as much
 * (a write-behind wave of 2,000 users, measured on a local node). More than ten partitions
 * would trip Cassandra's default warning (unlogged_batch_across_partitions_warn_threshold),
 * which the driver reports on every such batch.
 */
const MAX_BATCH_PARTITIONS = 10;
/** Rows per page when loading a user's states. */
const PAGE_ROWS = 5000;
/** The readiness probe answers quickly or counts as not ready. */
const PROBE_TIMEOUT_MS = 2000;

interface Statements {
  insertState: string;
  deleteState: string;
  selectUserStates: string;
  selectState: string;
  insertChannel: string;
  selectChannel: string;
  probeStates: string;
  probeChannels: string;
}

function statementsFor(keyspace: string): Statements {
  const states = `${keyspace}.read_states`;
  const channels = `${keyspace}.channels`;
  const stateColumns = 'channel_id, last_acked_id, mention_bias, pinned_at';
  return {
    insertState: `INSERT INTO ${states} (user_id, channel_id, last_acked_id, mention_bias, pinned_at) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    deleteState: `DELETE FROM ${states} USING TIMESTAMP ? WHERE user_id = ? AND channel_id = ?`,
    selectUserStates: `SELECT ${stateColumns} FROM ${states} WHERE user_id = ?`,
    selectState: `SELECT ${stateColumns} FROM ${states} WHERE user_id = ? AND channel_id = ?`,
    insertChannel: `INSERT INTO ${channels} (channel_id, message_count, everyone_count, recent_messages) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    selectChannel: `SELECT message_count, everyone_count, recent_messages FROM ${channels} WHERE channel_id = ?`,
    probeStates: `SELECT channel_id FROM ${states} WHERE user_id = 0 LIMIT 1`,
    probeChannels: `SELECT channel_id FROM ${channels} WHERE channel_id = 0`,
  };
}

const NO_ACK = snowflakeToLong('0');
/** A user id as its partition key's bytes (a bigint, big-endian), for the driver's token lookup. */
const routingKey = Buffer.alloc(8);

export class CassandraReadStateStore implements ReadStateStore {
  private readonly statements: Statements;
  private readonly reads: InFlightLimit;
  private readonly writes: InFlightLimit;
  /** Settled once the schema is in place; cleared after a failed attempt so the next call tries again. */
  private schema: Promise<void> | undefined;
  private lastReady: boolean | undefined;

  private constructor(
    private readonly client: Client,
    readonly keyspace: string,
    maxInFlight: number,
    private readonly log: Logger | undefined,
    private readonly replication: Replication,
  ) {
    this.statements = statementsFor(keyspace);
    this.reads = new InFlightLimit(maxInFlight);
    this.writes = new InFlightLimit(maxInFlight);
  }

  /**
   * A store on the cluster at `contactPoints`. Resolves whether or not Cassandra answers
   * (isReady() tells); throws only for options that can never work (a bad keyspace name).
   */
  static async connect(options: CassandraStoreOptions): Promise<CassandraReadStateStore> {
    assertKeyspaceName(options.keyspace);
    const localDataCenter = options.localDataCenter ?? DEFAULT_REPLICATION.dataCenter;
    const consistency = CONSISTENCIES[options.consistency ?? 'LOCAL_QUORUM'];
    if (consistency === undefined) throw new RangeError(`unknown consistency level ${JSON.stringify(options.consistency)}`);
    const replication: Replication = { factor: options.replicationFactor ?? DEFAULT_REPLICATION.factor, dataCenter: localDataCenter };
    const port = nativePortOf(options.contactPoints);
    const client = new Client({
      contactPoints: options.contactPoints,
      // The driver reaches every node it discovers (system.peers) on this one port, whatever
      // port the contact points name: without it, a ring on 9242 would be sought on 9042.
      protocolOptions: { port: port ?? DEFAULT_NATIVE_PORT },
      localDataCenter,
      policies: {
        loadBalancing: new policies.loadBalancing.DefaultLoadBalancingPolicy({ localDc: localDataCenter }),
        reconnection: new policies.reconnection.ExponentialReconnectionPolicy(250, 5000, false),
      },
      queryOptions: { prepare: true, isIdempotent: true, consistency },
      socketOptions: { connectTimeout: 5000 },
    });
    const log = options.log;
    if (port === undefined) {
      log?.warn({ contactPoints: options.contactPoints }, `contact points on different ports: the nodes the driver discovers are sought on ${DEFAULT_NATIVE_PORT}`);
    }
    if (log !== undefined) {
      client.on('log', (level: string, source: string, message: string) => {
        if (level === 'warning' || level === 'error') log.warn({ source }, `cassandra-driver: ${message}`);
      });
    }
    const store = new CassandraReadStateStore(client, options.keyspace, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, log, replication);
    await store.isReady();
    return store;
  }

  async loadUserStates(userId: string): Promise<ReadStateRecord[]> {
    await this.ensureSchema();
    const user = snowflakeToLong(userId);
    const records: ReadStateRecord[] = [];
    let pageState: string | undefined;
    do {
      const page = await this.reads.run(() =>
        this.client.execute(this.statements.selectUserStates, [user], { fetchSize: PAGE_ROWS, pageState }),
      );
      for (const row of page.rows) records.push(stateOfRow(userId, row));
      pageState = page.pageState ?? undefined;
    } while (pageState !== undefined);
    return records;
  }

  async loadState(userId: string, channelId: string): Promise<ReadStateRecord | null> {
    await this.ensureSchema();
    const result = await this.reads.run(() =>
      this.client.execute(this.statements.selectState, [snowflakeToLong(userId), snowflakeToLong(channelId)]),
    );
    const row = result.first();
    return row === null ? null : stateOfRow(userId, row);
  }

  async loadChannel(channelId: string): Promise<ChannelRecord | null> {
    await this.ensureSchema();
    const result = await this.reads.run(() => this.client.execute(this.statements.selectChannel, [snowflakeToLong(channelId)]));
    const row = result.first();
    if (row === null) return null;
    const window = row.get('recent_messages') as Buffer | null;
    return {
      channelId,
      messageCount: column<Long>(row, 'message_count').toNumber(),
      everyoneCount: column<Long>(row, 'everyone_count').toNumber(),
      window: window === null ? emptyWindow() : decodeWindow(window),
    };
  }

  async writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void> {
    if (records.length === 0) return;
    const timestamp = writeTimestamp(options);
    // Encode every record before the first await: a malformed one fails the call before any
    // row is written.
    const byUser = new Map<string, unknown[][]>();
    for (const record of records) {
      const params = [
        snowflakeToLong(record.userId),
        snowflakeToLong(record.channelId),
        record.lastAckedId === null ? NO_ACK : snowflakeToLong(record.lastAckedId),
        record.mentionBias,
        types.Long.fromNumber(record.pinnedAt),
        timestamp,
      ];
      const rows = byUser.get(record.userId);
      if (rows === undefined) byUser.set(record.userId, [params]);
      else rows.push(params);
    }
    await this.ensureSchema();
    const requests: Array<() => Promise<unknown>> = [];
    for (const partitions of this.byReplicas(byUser.values())) {
      let batch: unknown[][] = [];
      let partitionsInBatch = 0;
      const send = (rows: unknown[][]) => requests.push(() => this.writeBatch(rows));
      for (const rows of partitions) {
        for (let at = 0; at < rows.length; at += MAX_BATCH_ROWS) {
          const chunk = rows.slice(at, at + MAX_BATCH_ROWS);
          if (batch.length + chunk.length > MAX_BATCH_ROWS || partitionsInBatch === MAX_BATCH_PARTITIONS) {
            send(batch);
            batch = [];
            partitionsInBatch = 0;
          }
          batch.push(...chunk);
          partitionsInBatch++;
        }
      }
      if (batch.length > 0) send(batch);
    }
    await sendAll(requests, options?.maxInFlight, `writeStates (${records.length} records)`);
  }

  async deleteState(userId: string, channelId: string, options?: WriteOptions): Promise<void> {
    const timestamp = writeTimestamp(options);
    const params = [timestamp, snowflakeToLong(userId), snowflakeToLong(channelId)];
    await this.ensureSchema();
    await this.writes.run(() => this.client.execute(this.statements.deleteState, params));
  }

  /** Upserts channels: one request each, as each is a partition of its own. */
  async writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void> {
    if (records.length === 0) return;
    const timestamp = writeTimestamp(options);
    const rows = records.map((record) => [
      snowflakeToLong(record.channelId),
      types.Long.fromNumber(record.messageCount),
      types.Long.fromNumber(record.everyoneCount),
      encodeWindow(record.window),
      timestamp,
    ]);
    await this.ensureSchema();
    await sendAll(
      rows.map((params) => () => this.writes.run(() => this.client.execute(this.statements.insertChannel, params))),
      options?.maxInFlight,
      `writeChannels (${records.length} channels)`,
    );
  }

  /** True when the schema is in place and both tables answer a single-partition read. Never throws. */
  async isReady(): Promise<boolean> {
    let ready: boolean;
    let reason: unknown;
    try {
      await this.ensureSchema();
      // Past the in-flight limits: readiness is about Cassandra, not about our own queue.
      const probe = { readTimeout: PROBE_TIMEOUT_MS };
      await Promise.all([
        this.client.execute(this.statements.probeStates, [], probe),
        this.client.execute(this.statements.probeChannels, [], probe),
      ]);
      ready = true;
    } catch (error) {
      ready = false;
      reason = error;
    }
    // Log transitions only: /readyz polls this every few seconds.
    if (ready !== this.lastReady) {
      if (ready) this.log?.info({ keyspace: this.keyspace }, 'cassandra store ready');
      else this.log?.warn({ keyspace: this.keyspace, err: reason }, 'cassandra store not ready');
      this.lastReady = ready;
    }
    return ready;
  }

  async close(): Promise<void> {
    await this.client.shutdown();
  }

  private ensureSchema(): Promise<void> {
    if (this.schema === undefined) {
      this.schema = applySchema(this.client, this.keyspace, this.replication).catch((error: unknown) => {
        this.schema = undefined;
        throw error;
      });
    }
    return this.schema;
  }

  /**
   * Users' partitions (each a list of rows, the user id first in every row) grouped by the
   * nodes that hold them, so a batch goes to a node that holds every row in it. Without
   * token metadata (not loaded yet) all go in one group: the rows are written all the same.
   */
  private byReplicas(partitions: Iterable<unknown[][]>): Array<Array<unknown[][]>> {
    const groups = new Map<string, Array<unknown[][]>>();
    for (const rows of partitions) {
      const user = rows[0][0] as Long;
      routingKey.writeInt32BE(user.high, 0);
      routingKey.writeInt32BE(user.low, 4);
      // Null, not [], when the driver has no token metadata yet.
      const replicas = this.client.getReplicas(this.keyspace, routingKey) as Array<{ address: string }> | null;
      const key = replicas === null ? '' : replicas.map((host) => host.address).sort().join(' ');
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [rows]);
      else group.push(rows);
    }
    return [...groups.values()];
  }

  private writeBatch(rows: unknown[][]): Promise<unknown> {
    const insert = this.statements.insertState;
    if (rows.length === 1) return this.writes.run(() => this.client.execute(insert, rows[0]));
    const queries = rows.map((params) => ({ query: insert, params }));
    return this.writes.run(() => this.client.batch(queries, { logged: false }));
  }
}

const DEFAULT_NATIVE_PORT = 9042;

/** The native port all of `contactPoints` (host, host:port, [v6] or [v6]:port) name, or undefined if they differ. */
function nativePortOf(contactPoints: readonly string[]): number | undefined {
  const ports = new Set(
    contactPoints.map((point) => {
      const rest = point.startsWith('[') ? point.slice(point.indexOf(']') + 1) : point;
      // A bare IPv6 address has colons but no port.
      const match = /^[^:]*:([0-9]+)$/.exec(rest);
      return match === null ? DEFAULT_NATIVE_PORT : Number(match[1]);
    }),
  );
  return ports.size === 1 ? [...ports][0] : undefined;
}

/** The client timestamp of a write: the caller's stamp when it gave one, else now. */
function writeTimestamp(options: WriteOptions | undefined): Long {
  return types.Long.fromNumber(options?.issuedAtMicros ?? nextWriteMicros());
}

function stateOfRow(userId: string, row: Row): ReadStateRecord {
  const acked = column<Long>(row, 'last_acked_id');
  return {
    userId,
    channelId: longToSnowflake(column<Long>(row, 'channel_id')),
    lastAckedId: acked.isZero() ? null : longToSnowflake(acked),
    mentionBias: column<number>(row, 'mention_bias'),
    pinnedAt: column<Long>(row, 'pinned_at').toNumber(),
  };
}

/** A column every row written by this store has; its absence means the data was not written by it. */
function column<T extends Long | number>(row: Row, name: string): T {
  const value: unknown = row.get(name);
  if (value === null || value === undefined) throw new Error(`cassandra row without ${name}`);
  return value as T;
}

/**
 * Sends the requests, at most `maxInFlight` at a time (all at once when undefined; the store's
 * own limit still applies). After a failure no further request is sent, as the caller retries
 * the whole call; the call waits for those in flight, so none is still running when it
 * throws the first error.
 */
async function sendAll(requests: ReadonlyArray<() => Promise<unknown>>, maxInFlight: number | undefined, what: string): Promise<void> {
  const limit = new InFlightLimit(maxInFlight ?? requests.length);
  let sent = 0;
  const errors: unknown[] = [];
  await Promise.all(
    requests.map((request) =>
      limit.run(async () => {
        if (errors.length > 0) return;
        sent++;
        await request().catch((error: unknown) => errors.push(error));
      }),
    ),
  );
  if (errors.length > 0) throw new Error(`${what}: ${errors.length} of ${sent} requests sent failed`, { cause: errors[0] });
}
