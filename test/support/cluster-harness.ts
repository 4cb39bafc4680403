// Cluster helpers for e2e tests: gateway nodes as real processes (the compiled gateway, as in
// production) sharing one keyspace on the dev Cassandra node and the NATS server that
// `npm test` starts (infra/nats/start.sh), and typed clients that follow redirects.

import { ReconnectingClient } from '../../src/client/reconnecting-client.js';
import { nodeSocketFactory } from '../../src/client/node-socket.js';
import type { ReadState } from '../../src/client/gateway-client.js';
import { AdminApi, type GatewayProcess, startGateway, userToken } from './gateway-harness.js';

export const NATS_URL = process.env.GATEWAY_NATS_URL ?? 'nats://127.0.0.1:4222';

export interface ClusterNodeProcess extends GatewayProcess {
  nodeId: number;
  api: AdminApi;
}

export interface ClusterView {
  node_id: number;
  nodes: Array<{ node_id: number; url: string; shards: number; ready: boolean }>;
  shards: number;
}

/** Starts a gateway node of the cluster on `keyspace`; resolves once its /readyz is 200 (it holds a shard map). */
export async function startClusterNode(nodeId: number, keyspace: string, env: Record<string, string> = {}): Promise<ClusterNodeProcess> {
  const gateway = await startGateway({ GATEWAY_NATS_URL: NATS_URL, GATEWAY_NODE_ID: String(nodeId), CASSANDRA_KEYSPACE: keyspace, ...env });
  return Object.assign(gateway, { nodeId, api: new AdminApi(gateway.httpUrl) });
}

export async function clusterView(node: ClusterNodeProcess): Promise<ClusterView> {
  const result = await node.api.call('GET', '/v1/cluster');
  if (result.status !== 200) throw new Error(`GET /v1/cluster: ${result.status}`);
  return result.body as ClusterView;
}

/** Resolves once every node's map lists exactly `nodeIds` as ready. */
export async function waitForMembers(nodes: ClusterNodeProcess[], nodeIds: number[], timeoutMs = 20_000): Promise<void> {
  const want = [...nodeIds].sort((a, b) => a - b).join(',');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(nodes.map((node) => clusterView(node).catch(() => null)));
    const agreed = views.every((view) => view !== null && view.nodes.filter((n) => n.ready).map((n) => n.node_id).join(',') === want);
    if (agreed) return;
    if (Date.now() > deadline) throw new Error(`nodes do not agree on members ${want}: ${JSON.stringify(views)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A user's typed client, connected through `url` (any node), keeping the newest update per channel. */
export class ClusterUser {
  readonly client: ReconnectingClient;
  readonly latest = new Map<string, ReadState>();
  updates = 0;
  readies = 0;
  /** Why each socket dropped (close codes), in order. */
  readonly drops: Array<number | 'zombie'> = [];

  constructor(
    readonly userId: string,
    url: string,
    fallbackUrls: string[] = [],
  ) {
    this.client = new ReconnectingClient({ url, fallbackUrls, token: () => userToken(userId), socketFactory: nodeSocketFactory, backoffMs: 200, maxBackoffMs: 1000 });
    this.client.on('ready', (ready) => {
      this.readies++;
      for (const state of ready.read_states) this.latest.set(state.channel_id, state);
    });
    this.client.on('reconnecting', (event) => this.drops.push(event.reason));
    this.client.on('dispatch', (event, d) => {
      if (event !== 'READ_STATE_UPDATE') return;
      const state = d as ReadState;
      this.updates++;
      this.latest.set(state.channel_id, state);
    });
  }
}
