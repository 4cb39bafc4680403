// Wiring only: configuration -> Cassandra store -> persistent read states -> gateway (and,
// with GATEWAY_NATS_URL, the cluster node around them), and the clean stop on
// SIGTERM/SIGINT: stop accepting, close sockets with RECONNECT + 1001, write every changed
// read state, hand the shards over, exit 0.

import { pino } from 'pino';
import { ClusterNode } from './cluster/cluster-node.js';
import { ConfigError, loadConfig } from './config.js';
import { demoPageUrl, mountDemo } from './demo/demo-routes.js';
import { seedDemo } from './demo/demo-seed.js';
import { Gateway } from './gateway/app.js';
import { connectStore, createReadStates } from './read-state-service.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const log = pino({ level: config.logLevel });
  if (config.devSecrets) {
    log.warn({ GATEWAY_JWT_SECRET: config.jwtSecret, GATEWAY_ADMIN_TOKEN: config.adminToken }, 'using development secrets (refused when NODE_ENV=production)');
  }

  const store = await connectStore(config, log);
  const cluster =
    config.cluster === null
      ? undefined
      : await ClusterNode.connect({
          config: config.cluster,
          keyspace: config.cassandraKeyspace,
          store,
          log,
          openReadStates: (channelSource) => createReadStates(config, store, log, { channelSource }),
        });
  const readStates = cluster?.local ?? createReadStates(config, store, log);
  readStates.start();
  const gateway = new Gateway({
    config,
    readStates: cluster?.readStates ?? readStates,
    log,
    mountRoutes: (app) => mountDemo(app, { config, log }),
    cluster: cluster?.gatewayParts(),
  });
  let port: number;
  if (cluster === undefined) {
    // Development only (a no-op in production): seed before listening so no session misses a dispatch.
    await seedDemo({ config, operations: gateway.adminOperations, log });
    port = await gateway.listen();
  } else {
    cluster.attach(gateway);
    // Listen before the others hear that this node is ready: they send its users here at once
    // (RECONNECT), and a refused connection would send them on a detour. A session that comes
    // before the node knows its shards waits for the map (docs/protocol.md "Cluster").
    port = await gateway.listen();
    cluster.start();
    await cluster.whenMapped();
    // Development only: the node with the lowest id seeds the demo, through the others.
    if (cluster.isFirstNode()) await seedDemo({ config, operations: gateway.adminOperations, log });
  }
  log.info({ host: config.host, port, keyspace: config.cassandraKeyspace, workerId: config.workerId, node: config.cluster?.nodeId, url: config.cluster?.publicUrl }, 'gateway listening');
  const demoUrl = demoPageUrl(config, port);
  if (demoUrl !== null) log.info({ url: demoUrl }, `demo page: ${demoUrl}`);

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return log.warn({ signal }, 'already stopping');
    stopping = true;
    log.info({ signal }, 'stopping: closing sessions, writing changed read states');
    const successor = cluster?.successors();
    await cluster?.leave();
    gateway.close(successor);
    await readStates.stop();
    await cluster?.stop();
    await store.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
  // A failed promise somewhere must not take every session down with it.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
