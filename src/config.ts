// Every environment variable the process reads (docs/protocol.md "Operations"), parsed and
// checked in one place. Anything wrong is reported all at once, before the process binds.

import { DATA_CENTER_NAME } from './store/cassandra-schema.js';

export interface CassandraContactPoint {
  host: string;
  port: number;
}

export interface Config {
  nodeEnv: string;
  host: string;
  port: number;
  cassandraContactPoints: CassandraContactPoint[];
  cassandraKeyspace: string;
  /** Replicas per data center, used only when the gateway creates the keyspace. */
  cassandraReplicationFactor: number;
  /** Consistency level of every read and write (one of CASSANDRA_CONSISTENCY_LEVELS). */
  cassandraConsistency: CassandraConsistency;
  /** The data center the driver sends requests to, and the one a created keyspace replicates in. */
  cassandraLocalDataCenter: string;
  jwtSecret: string;
  adminToken: string;
  /** True when the secrets above are the built-in development values. */
  devSecrets: boolean;
  cacheCapacity: number;
  flushDelayMs: number;
  heartbeatIntervalMs: number;
  rateLimit: number;
  rateWindowMs: number;
  /** How long a session whose socket closed is kept for RESUME. */
  resumeWindowMs: number;
  /** Dispatches a session keeps for RESUME at most. */
  resumeBuffer: number;
  /** Snowflake worker id of this process (0..1023): distinct per process sharing a keyspace. */
  workerId: number;
  /** Set when the process is a node of a cluster (GATEWAY_NATS_URL); null on a single node. */
  cluster: ClusterConfig | null;
  logLevel: string;
}

/** A cluster node's settings (docs/protocol.md "Cluster"). */
export interface ClusterConfig {
  natsUrl: string;
  /** GATEWAY_NODE_ID: unique per node, also the snowflake worker id. */
  nodeId: number;
  /** The ws URL clients use to reach this node. */
  publicUrl: string;
  /** user_id mod shards (and channel_id mod shards) picks the shard; the same on every node. */
  shards: number;
  /** How often the node says it is alive. */
  heartbeatMs: number;
  /** A node not heard from for this long is taken as lost. */
  expireMs: number;
}

/** Development-only secrets: printed by `npm start`, refused in production. */
export const DEV_JWT_SECRET = 'dev-only-jwt-secret-do-not-use-in-production';
export const DEV_ADMIN_TOKEN = 'dev-only-admin-token';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Consistency levels a read and a write both accept. Not ANY (reads refuse it: the readiness
 * probe would never pass) nor SERIAL/LOCAL_SERIAL (only for lightweight transactions).
 */
export const CASSANDRA_CONSISTENCY_LEVELS = ['ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE'] as const;
export type CassandraConsistency = (typeof CASSANDRA_CONSISTENCY_LEVELS)[number];

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const nodeEnv = env.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';

  function integer(name: string, fallback: number, min: number, max: number): number {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = /^[0-9]+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer in ${min}..${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  }

  function secret(name: string, devValue: string): { value: string; dev: boolean } {
    const raw = env[name];
    if (raw !== undefined && raw !== '') {
      if (production && raw.length < 16) problems.push(`${name} must be at least 16 characters in production`);
      return { value: raw, dev: false };
    }
    if (production) problems.push(`${name} is required when NODE_ENV=production`);
    return { value: devValue, dev: true };
  }

  const host = env.HOST && env.HOST !== '' ? env.HOST : '127.0.0.1';
  const port = integer('PORT', 8080, 0, 65535);

  const cassandraContactPoints: CassandraContactPoint[] = [];
  for (const entry of (env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',')) {
    const point = entry.trim();
    if (point === '') continue;
    const match = /^(\[[^\]]+\]|[^:]+)(?::([0-9]{1,5}))?$/.exec(point);
    const pointPort = match?.[2] === undefined ? 9042 : Number(match[2]);
    if (match === null || pointPort < 1 || pointPort > 65535) {
      problems.push(`CASSANDRA_CONTACT_POINTS entry "${point}" is not host[:port]`);
      continue;
    }
    cassandraContactPoints.push({ host: match[1].replace(/^\[|\]$/g, ''), port: pointPort });
  }
  if (cassandraContactPoints.length === 0) problems.push('CASSANDRA_CONTACT_POINTS names no host');

  const cassandraKeyspace = env.CASSANDRA_KEYSPACE && env.CASSANDRA_KEYSPACE !== '' ? env.CASSANDRA_KEYSPACE : 'readstates';
  // CQL identifiers: unquoted keyspace names are letters, digits and underscores, at most 48.
  if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(cassandraKeyspace)) {
    problems.push(`CASSANDRA_KEYSPACE must be a CQL name (letter, then letters, digits, _; at most 48), got "${cassandraKeyspace}"`);
  }

  const cassandraConsistency = (env.CASSANDRA_CONSISTENCY && env.CASSANDRA_CONSISTENCY !== '' ? env.CASSANDRA_CONSISTENCY.trim().toUpperCase() : 'LOCAL_QUORUM') as CassandraConsistency;
  if (!CASSANDRA_CONSISTENCY_LEVELS.includes(cassandraConsistency)) {
    problems.push(`CASSANDRA_CONSISTENCY must be one of ${CASSANDRA_CONSISTENCY_LEVELS.join(', ')}, got "${env.CASSANDRA_CONSISTENCY}"`);
  }
  const cassandraLocalDataCenter = env.CASSANDRA_LOCAL_DATACENTER && env.CASSANDRA_LOCAL_DATACENTER !== '' ? env.CASSANDRA_LOCAL_DATACENTER.trim() : 'datacenter1';
  if (!DATA_CENTER_NAME.test(cassandraLocalDataCenter)) {
    problems.push(`CASSANDRA_LOCAL_DATACENTER must be a data center name (letters, digits, _ . : -; at most 64), got "${env.CASSANDRA_LOCAL_DATACENTER}"`);
  }

  const jwt = secret('GATEWAY_JWT_SECRET', DEV_JWT_SECRET);
  const admin = secret('GATEWAY_ADMIN_TOKEN', DEV_ADMIN_TOKEN);

  const logLevel = env.LOG_LEVEL && env.LOG_LEVEL !== '' ? env.LOG_LEVEL : 'info';
  if (!LOG_LEVELS.has(logLevel)) problems.push(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`);

  const config: Config = {
    nodeEnv,
    host,
    port,
    cassandraContactPoints,
    cassandraKeyspace,
    cassandraReplicationFactor: integer('CASSANDRA_REPLICATION_FACTOR', 1, 1, 99),
    cassandraConsistency,
    cassandraLocalDataCenter,
    jwtSecret: jwt.value,
    adminToken: admin.value,
    devSecrets: jwt.dev || admin.dev,
    cacheCapacity: integer('READSTATE_CACHE_CAPACITY', 1_000_000, 1, 0xfffffffe),
    flushDelayMs: integer('READSTATE_FLUSH_DELAY_MS', 30_000, 0, 2 ** 31 - 1),
    heartbeatIntervalMs: integer('GATEWAY_HEARTBEAT_INTERVAL_MS', 41_250, 100, 2 ** 31 - 1),
    rateLimit: integer('GATEWAY_RATE_LIMIT', 120, 1, 1_000_000_000),
    rateWindowMs: integer('GATEWAY_RATE_WINDOW_MS', 60_000, 1, 2 ** 31 - 1),
    resumeWindowMs: integer('GATEWAY_RESUME_WINDOW_MS', 60_000, 0, 2 ** 31 - 1),
    resumeBuffer: integer('GATEWAY_RESUME_BUFFER', 1000, 0, 1_000_000),
    workerId: integer('GATEWAY_WORKER_ID', 0, 0, 1023),
    cluster: null,
    logLevel,
  };
  const natsUrl = env.GATEWAY_NATS_URL?.trim() ?? '';
  if (natsUrl !== '') {
    if (!/^(nats|tls|wss?):\/\/[^\s]+$/.test(natsUrl) || natsUrl.split(',').length > 1) problems.push(`GATEWAY_NATS_URL must be one nats:// URL, got "${natsUrl}"`);
    if (env.GATEWAY_NODE_ID === undefined || env.GATEWAY_NODE_ID === '') problems.push('GATEWAY_NODE_ID is required with GATEWAY_NATS_URL (a number 0..1023, unique per node)');
    const nodeId = integer('GATEWAY_NODE_ID', 0, 0, 1023);
    if (env.GATEWAY_WORKER_ID !== undefined && env.GATEWAY_WORKER_ID !== '' && config.workerId !== nodeId) problems.push('GATEWAY_WORKER_ID differs from GATEWAY_NODE_ID: on a cluster node the node id is the worker id; leave GATEWAY_WORKER_ID unset');
    const publicUrl = env.GATEWAY_PUBLIC_URL?.trim() || `ws://${host.includes(':') ? `[${host}]` : host}:${port}/gateway`;
    if (!/^wss?:\/\/[^\s]+$/.test(publicUrl)) problems.push(`GATEWAY_PUBLIC_URL must be a ws:// or wss:// URL, got "${publicUrl}"`);
    const heartbeatMs = integer('GATEWAY_NODE_HEARTBEAT_MS', 500, 50, 60_000);
    const expireMs = integer('GATEWAY_NODE_EXPIRE_MS', 3000, 100, 600_000);
    if (expireMs < 2 * heartbeatMs) problems.push('GATEWAY_NODE_EXPIRE_MS must be at least twice GATEWAY_NODE_HEARTBEAT_MS');
    config.workerId = nodeId;
    config.cluster = { natsUrl, nodeId, publicUrl, shards: integer('GATEWAY_SHARDS', 1024, 1, 65_536), heartbeatMs, expireMs };
  }
  // 1.5 x the interval must still fit a Node timer.
  if (config.heartbeatIntervalMs * 1.5 > 2 ** 31 - 1) problems.push('GATEWAY_HEARTBEAT_INTERVAL_MS is too large');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
