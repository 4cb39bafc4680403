// Opens the read-state service the way every process runs it: the Cassandra store from the
// configuration, on a thread of its own (store-thread.ts says why), and the engine made
// persistent on top of it. Shared by main.ts (single node and cluster node) and the
// benchmark gateway, which differs only in the table it passes.

import type { Logger } from 'pino';
import type { Config } from './config.js';
import { PersistentReadStates, type PersistentReadStatesOptions } from './store/persistent-read-states.js';
import type { ReadStateStore } from './store/records.js';
import { StoreThreadClient } from './store/store-thread-client.js';

export function connectStore(config: Config, log: Logger): Promise<ReadStateStore> {
  return StoreThreadClient.connect({
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
  store: ReadStateStore,
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
): Promise<{ store: ReadStateStore; readStates: PersistentReadStates }> {
  const store = await connectStore(config, log);
  return { store, readStates: createReadStates(config, store, log, { createTable }) };
}
