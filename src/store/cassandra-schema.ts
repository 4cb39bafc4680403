// The Cassandra schema, applied at service start when missing.
//
// read_states: one row per membership, partitioned by user, so a user's READY is one
//   single-partition read. Ids are bigints (see cassandra-ids.ts); last_acked_id 0 means
//   "nothing acked" (as in the engine: no message id is 0), which keeps every write a full,
//   tombstone-free overwrite. Every column is a plain value, so writes are idempotent and,
//   carrying explicit timestamps, safe to retry in any order.
// channels: counts and the window of recent messages with their mentions (a blob, see
//   cassandra-window-blob.ts), so unread and mention counts are exact after a restart.
//   The newest message id is the window's last one.
// Membership needs no table of its own: it is the existence of a read_states row, and
//   nothing asks "who is in this channel" (a message changes only the author's and the
//   mentioned members' rows; everyone else's unread count is derived from the window).
//
// Replication: a keyspace the gateway creates gets NetworkTopologyStrategy with
// CASSANDRA_REPLICATION_FACTOR replicas in the local data center (CASSANDRA_LOCAL_DATACENTER,
// the one the driver uses): 1 by default, which on a single node is what SimpleStrategy RF 1
// was. Why NetworkTopologyStrategy rather than SimpleStrategy: it is what Cassandra recommends
// for production and what README's CREATE KEYSPACE example uses, so a keyspace the gateway
// creates is the documented one; LOCAL_QUORUM and LOCAL_ONE count replicas per data center,
// which only it defines; adding a data center later is an ALTER KEYSPACE, not a change of
// strategy; and Cassandra 5.0 can refuse SimpleStrategy (guardrail simplestrategy_enabled).
// A keyspace that exists is left as it is (`IF NOT EXISTS`): a change of replication factor
// is an ALTER KEYSPACE and a repair, done by an operator.

import type cassandra from 'cassandra-driver';

/**
 * An unquoted CQL name. It goes into statements as it is, so CQL folds it to lower case
 * ("ReadStates" is the keyspace readstates), as cqlsh would.
 */
const KEYSPACE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;

export function assertKeyspaceName(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) {
    throw new RangeError(`keyspace must be a letter then up to 47 letters, digits or _, got ${JSON.stringify(keyspace)}`);
  }
}

/** How a keyspace the gateway creates is replicated. */
export interface Replication {
  /** Replicas in `dataCenter`. */
  factor: number;
  dataCenter: string;
}

/** One replica in SimpleSnitch's data center: the single dev node. */
export const DEFAULT_REPLICATION: Replication = { factor: 1, dataCenter: 'datacenter1' };

/** A data center name as snitches make them; it goes into CREATE KEYSPACE as a string literal. */
export const DATA_CENTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** The statements that create the schema in `keyspace`, each a no-op when its object exists. */
export function schemaStatements(keyspace: string, replication: Replication = DEFAULT_REPLICATION): string[] {
  assertKeyspaceName(keyspace);
  // Both go into the statement as they are: checked here, whatever the caller checked.
  if (!Number.isSafeInteger(replication.factor) || replication.factor < 1) {
    throw new RangeError(`replication factor must be a positive integer, got ${replication.factor}`);
  }
  if (!DATA_CENTER_NAME.test(replication.dataCenter)) {
    throw new RangeError(`data center must be letters, digits, _ . : or -, got ${JSON.stringify(replication.dataCenter)}`);
  }
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace}
       WITH replication = {'class': 'NetworkTopologyStrategy', '${replication.dataCenter}': ${replication.factor}}`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.read_states (
       user_id bigint,
       channel_id bigint,
       last_acked_id bigint,
       mention_bias int,
       pinned_at bigint,
       PRIMARY KEY ((user_id), channel_id))`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.channels (
       channel_id bigint PRIMARY KEY,
       message_count bigint,
       everyone_count bigint,
       recent_messages blob)`,
  ];
}

/** Creates whatever part of the schema is missing; the driver waits for schema agreement after each change. */
export async function applySchema(client: cassandra.Client, keyspace: string, replication: Replication = DEFAULT_REPLICATION): Promise<void> {
  for (const statement of schemaStatements(keyspace, replication)) await client.execute(statement);
}
