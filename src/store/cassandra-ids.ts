// Snowflakes in Cassandra: CQL `bigint` is a signed 64-bit integer, snowflakes are unsigned.
// The column holds the same 64 bits read as two's complement: ids below 2^63 (every
// snowflake for the next ~140 years) read the same in cqlsh, ids from 2^63 on come back
// negative there and exact here. Nothing orders by these columns, so the wrap is harmless.
//
// The driver's Long is built from and read back as the two 32-bit halves the engine already
// uses (engine/snowflake.ts), so no value above 2^53 or 2^63 ever passes through a double.

import cassandra from 'cassandra-driver';
import { formatSnowflake, parseSnowflake } from '../engine/snowflake.js';

export type Long = cassandra.types.Long;
const { Long } = cassandra.types;

const halves = new Uint32Array(2);

/** The bigint column value of a decimal snowflake; throws on a malformed id. */
export function snowflakeToLong(id: string): Long {
  if (!parseSnowflake(id, halves, 0)) throw new RangeError(`not a snowflake: ${JSON.stringify(id)}`);
  return Long.fromBits(halves[1], halves[0]);
}

/** The canonical decimal snowflake held in a bigint column. */
export function longToSnowflake(value: Long): string {
  return formatSnowflake(value.high >>> 0, value.low >>> 0);
}
