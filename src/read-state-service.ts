// Opens the read-state service the way every process runs it: the Cassandra store from the
// configuration, and the engine made persistent on top of it. Shared by main.ts (single
// node and cluster node) and the benchmark gateway, which differs only in the table it passes.

import type { Logger } from 'pino';
import type { Config } from './config.js';
import { CassandraReadStateStore } from './store/cassandra-store.js';
import { PersistentReadStates, type PersistentReadStatesOptions } from './store/persistent-read-states.js';

export function connectStore(config: Config, log: Logger): Promise<CassandraReadStateStore> {
  return CassandraReadStateStore.connect({
    contactPoints: config.cassandraContactPoints.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)),
    keyspace: config.cassandraKeyspace,
    localDataCenter: config.cassandraLocalDataCenter,
    consistency: config.cassandraConsistency,
    replicationFactor: config.cassandraReplicationFactor,
    log,
  });
}

export function createReadStates(
  config: Config,
  store: CassandraReadStateStore,
  log: Logger,
  extra: Pick<PersistentReadStatesOptions, 'createTable' | 'channelSource'> = {},
): PersistentReadStates {
  return new PersistentReadStates({
    store,
    capacity: config.cacheCapacity,
    flushDelayMs: config.flushDelayMs,
    workerId: config.workerId,
    log,
    ...extra,
  });
}

export async function openReadStates(
  config: Config,
  log: Logger,
  createTable?: PersistentReadStatesOptions['createTable'],
): Promise<{ store: CassandraReadStateStore; readStates: PersistentReadStates }> {
  const store = await connectStore(config, log);
  return { store, readStates: createReadStates(config, store, log, { createTable }) };
}
