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
// Replication: SimpleStrategy with RF 1 suits the single dev node. Production creates the
// keyspace beforehand with NetworkTopologyStrategy, e.g.
//   CREATE KEYSPACE readstates WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3};
// and `IF NOT EXISTS` leaves it as it is.

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

/** The statements that create the schema in `keyspace`, each a no-op when its object exists. */
export function schemaStatements(keyspace: string): string[] {
  assertKeyspaceName(keyspace);
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${keyspace}
       WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
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
export async function applySchema(client: cassandra.Client, keyspace: string): Promise<void> {
  for (const statement of schemaStatements(keyspace)) await client.execute(statement);
}
