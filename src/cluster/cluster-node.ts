// A gateway process as a node of a cluster (docs/protocol.md "Cluster"): the wiring of its
// NATS connection, shard ownership, node requests, channel replicas and the cluster read
// states around the single-node PersistentReadStates, and the hooks that move users when
// shards move. main.ts builds one when GATEWAY_NATS_URL is set.
//
// Subjects are prefixed with the Cassandra keyspace: nodes sharing a keyspace form one
// cluster, and two clusters can share a NATS server without hearing each other.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config.js';
import type { Gateway, GatewayClusterParts } from '../gateway/app.js';
import type { ClusterStats } from '../gateway/metrics.js';
import type { PersistentReadStates } from '../store/persistent-read-states.js';
import type { ReadStateStore } from '../store/records.js';
import { ForwardedAdminOperations } from './admin-forwarding.js';
import { ChannelReplicas } from './channel-replicas.js';
import { ClusterReadStates } from './cluster-read-states.js';
import { NodeRequests } from './node-requests.js';
import { ShardMap, shardOfHalves, shardOfId } from './shard-map.js';
import { ShardOwnership } from './shard-ownership.js';

/** Longest wait for a live node to hand over a shard it is releasing. */
const HANDOFF_TIMEOUT_MS = 10_000;
/** How long a stopping node waits, after saying it leaves, before it sends its clients away. */
const LEAVE_GRACE_MS = 250;

export interface ClusterNodeOptions {
  config: ClusterConfig;
  keyspace: string;
  store: ReadStateStore;
  log: Logger;
  /** Builds this node's read states with the cluster's channel source. */
  openReadStates: (channelSource: ChannelReplicas) => PersistentReadStates;
}

export class ClusterNode {
  readonly readStates: ClusterReadStates;
  readonly local: PersistentReadStates;
  readonly ownership: ShardOwnership;
  private readonly requests: NodeRequests;
  private readonly replicas: ChannelReplicas;
  private gateway: Gateway | undefined;

  static async connect(options: ClusterNodeOptions): Promise<ClusterNode> {
    const nc = await connect({ servers: options.config.natsUrl, name: `readstate-gateway-${options.config.nodeId}`, maxReconnectAttempts: -1 });
    return new ClusterNode(nc, options);
  }

  private constructor(
    private readonly nc: NatsConnection,
    private readonly options: ClusterNodeOptions,
  ) {
    const { config, keyspace, store, log } = options;
    const prefix = `readstate.${keyspace}`;
    const shards = config.shards;
    this.requests = new NodeRequests(nc, prefix, config.nodeId, log);
    this.ownership = new ShardOwnership(
      nc,
      prefix,
      { id: config.nodeId, url: config.publicUrl },
      { shards, heartbeatMs: config.heartbeatMs, expireMs: config.expireMs, handoffTimeoutMs: HANDOFF_TIMEOUT_MS },
      { release: (lost) => this.release(lost), gained: (gained, orphaned) => this.gained(gained, orphaned) },
      log,
    );
    const ownsUser = (hi: number, lo: number) => this.ownership.serves(shardOfHalves(hi, lo, shards));
    let local: PersistentReadStates | undefined;
    this.replicas = new ChannelReplicas({
      nc,
      prefix,
      shards,
      readStates: () => local!,
      store,
      ownership: this.ownership,
      requests: this.requests,
      ownsUser,
      applied: (result) => this.readStates.applied(result),
      log,
    });
    local = options.openReadStates(this.replicas);
    this.local = local;
    this.readStates = new ClusterReadStates({ local, replicas: this.replicas, ownership: this.ownership, requests: this.requests, shards, ownsUser });
  }

  /** What the gateway needs of the cluster; `attach` must follow once the gateway exists. */
  gatewayParts(): GatewayClusterParts {
    return {
      routing: { route: (userId) => this.route(userId) },
      adminOperations: (local) => new ForwardedAdminOperations(local, this.ownership, this.requests, this.options.config.shards),
      view: () => this.view(),
    };
  }

  attach(gateway: Gateway): void {
    this.gateway = gateway;
    this.readStates.membersChanged = (result) => gateway.dispatcher.membersChanged(result, undefined);
    gateway.metrics.watchCluster(() => this.stats());
  }

  start(): void {
    this.requests.start();
    this.ownership.start();
  }

  /** Resolves once the node holds its first shard map. */
  whenMapped(): Promise<void> {
    return new Promise((resolve) => this.ownership.onReady(resolve));
  }

  /** This node has the lowest id in its map (the one that seeds the demo). */
  isFirstNode(): boolean {
    const nodes = this.ownership.shardMap?.nodes ?? [];
    return nodes.length > 0 && Math.min(...nodes) === this.options.config.nodeId;
  }

  /** Where each user goes once this node has left: the map the others compute without it. */
  successors(): (userId: string) => string | undefined {
    const map = this.ownership.shardMap;
    const others = map?.nodes.filter((id) => id !== this.options.config.nodeId) ?? [];
    if (map === null || others.length === 0) return () => undefined;
    const next = new ShardMap(map.shards, others);
    const urls = new Map(this.ownership.membership.nodes().map((node) => [node.id, node.url]));
    return (userId) => urls.get(next.ownerOf(shardOfId(userId, map.shards)));
  }

  /**
   * A clean stop: tells the others this node is leaving, and gives them LEAVE_GRACE_MS to
   * drop it from their maps before the caller sends its clients on to them (a client that
   * came sooner would be sent back here). The caller then closes the gateway, writes the
   * states, and calls stop().
   */
  async leave(): Promise<void> {
    this.ownership.leave();
    await this.nc.flush().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, LEAVE_GRACE_MS));
  }

  async stop(): Promise<void> {
    await this.ownership.stop();
    this.replicas.stop();
    this.requests.stop();
    await this.nc.drain().catch(() => {});
  }

  private async route(userId: string): Promise<string | null> {
    const shard = shardOfId(userId, this.options.config.shards);
    await this.ownership.whenSettled(shard);
    if (this.ownership.serves(shard)) return null;
    return this.ownership.ownerOf(shard)?.url ?? null;
  }

  private async release(lost: ReadonlySet<number>): Promise<void> {
    const shards = this.options.config.shards;
    const sockets = this.gateway?.moveUsers((userId) => {
      const shard = shardOfId(userId, shards);
      return lost.has(shard) ? this.ownership.ownerOf(shard)?.url : undefined;
    });
    const moved = (hi: number, lo: number) => lost.has(shardOfHalves(hi, lo, shards));
    const states = await this.local.releaseUsers(moved);
    await this.local.releaseChannels(moved);
    this.options.log.info({ shards: lost.size, sockets, states }, 'shards handed over: users moved, their changes written');
  }

  private gained(gained: ReadonlySet<number>, orphaned: boolean): void {
    if (!orphaned) return;
    const shards = this.options.config.shards;
    this.replicas.adoptOrphaned(gained);
    this.local.adoptChannels((hi, lo) => gained.has(shardOfHalves(hi, lo, shards)));
  }

  private view(): unknown {
    const map = this.ownership.shardMap;
    const nodes = this.ownership.membership.nodes().map((node) => ({
      node_id: node.id,
      url: node.url,
      shards: map?.shardsOf(node.id) ?? 0,
      ready: node.ready && !node.leaving && map !== null && map.nodes.includes(node.id),
    }));
    nodes.sort((a, b) => a.node_id - b.node_id);
    return { node_id: this.options.config.nodeId, nodes, shards: this.options.config.shards };
  }

  private stats(): ClusterStats {
    const requests = this.requests.counters;
    const replicas = this.replicas.counters;
    const ownership = this.ownership.counters;
    return {
      nodes: this.ownership.shardMap?.nodes.length ?? 0,
      shards: this.options.config.shards,
      shardsOwned: this.ownership.shardsOwned(),
      channelsFollowed: this.replicas.channelsFollowed,
      messagesOut: replicas.messagesOut,
      messagesIn: replicas.messagesIn,
      messageBytesOut: replicas.bytesOut,
      messageBytesIn: replicas.bytesIn,
      requestsSent: requests.sent,
      requestsReceived: requests.received,
      mapChanges: ownership.mapChanges,
      shardsReleased: ownership.shardsReleased,
      shardsGained: ownership.shardsGained,
    };
  }
}
