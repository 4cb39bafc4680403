// This node's shards, and their hand-over when the set of live nodes changes.
//
// Every node computes the same ShardMap from the live, ready nodes it hears (membership).
// When the map changes:
// - shards this node lost to a live node are released: the wiring's `release` hook moves
//   their users away (RECONNECT + 4010) and writes what they changed; then this node
//   publishes a hand-off on `<prefix>.handoff` naming the node set it acted on;
// - shards it gained from a node that is still alive are served once that node's hand-off
//   for a node set that gives the shard to another node arrives (it has released the shard
//   and its changes are in Cassandra by then), or after handoffTimeoutMs. An older hand-off
//   of the same node, for a set in which it still owned the shard, does not count;
// - shards it gained from a node that vanished (killed) are served at once: nothing can be
//   handed over, and what the lost node had not written yet is lost (its flush window).
// - a node that stops cleanly says so first (the others drop it from their maps at once and
//   wait for its hand-off), sends its clients on, writes everything, then hands all of its
//   shards over in one message (stop()).
// A node that starts settles for one expiry period to hear the others before it holds a map.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { type NodeInfo, NodeMembership } from './node-membership.js';
import { ShardMap } from './shard-map.js';

export interface ShardOwnershipOptions {
  shards: number;
  heartbeatMs: number;
  expireMs: number;
  /** Longest wait for a live node to hand a shard over. */
  handoffTimeoutMs: number;
}

export interface ShardHooks {
  /** Moves the users of `shards` to their new owners and writes their changes; resolves when written. */
  release(shards: ReadonlySet<number>, map: ShardMap): Promise<void>;
  /** The node now serves `shards`; `orphaned` ones came from a node that vanished. */
  gained(shards: ReadonlySet<number>, orphaned: boolean): void;
}

interface Handoff {
  from: number;
  /** The live node set the sender's map was computed from. */
  nodes: number[];
  released: number[];
}

export class ShardOwnership {
  readonly membership: NodeMembership;
  private map: ShardMap | null = null;
  /** Shards this node owns but does not serve yet, with the node handing them over. */
  private readonly awaiting = new Map<number, number>();
  private readonly waiters = new Map<number, Array<() => void>>();
  private handoffTimers = new Set<NodeJS.Timeout>();
  private subscription: Subscription | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  /** Releases run one after another, in map order. */
  private releasing: Promise<void> = Promise.resolve();
  /** Each node's latest hand-off, as the map of the node set it acted on. */
  private readonly heardHandoffs = new Map<number, ShardMap>();
  /** The shards this node owned when it started to leave: handed over at stop(). */
  private readonly leftShards: number[] = [];
  private readonly readyListeners: Array<() => void> = [];
  readonly counters = { shardsReleased: 0, shardsGained: 0, mapChanges: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    self: { id: number; url: string },
    private readonly options: ShardOwnershipOptions,
    private readonly hooks: ShardHooks,
    private readonly log: Logger,
  ) {
    this.membership = new NodeMembership(nc, `${prefix}.nodes`, self, options, log);
  }

  get selfId(): number {
    return this.membership.self.id;
  }

  /** The node holds a shard map (GET /readyz is 503 before). */
  get holdsMap(): boolean {
    return this.map !== null;
  }

  get shardMap(): ShardMap | null {
    return this.map;
  }

  start(): void {
    this.subscription = this.nc.subscribe(`${this.prefix}.handoff`, {
      callback: (error, message) => {
        if (error !== null) return;
        try {
          this.heardHandoff(message.json<Handoff>());
        } catch {
          this.log.warn('malformed hand-off ignored');
        }
      },
    });
    this.membership.onChange(() => {
      if (this.map !== null) this.remap();
    });
    this.membership.start();
    // Hear every live node's heartbeat before claiming shards.
    this.settleTimer = setTimeout(() => {
      this.membership.setReady();
      this.remap();
      for (const listener of this.readyListeners) listener();
    }, this.options.expireMs);
  }

  /** Runs once the node holds its first map. */
  onReady(listener: () => void): void {
    if (this.map !== null) listener();
    else this.readyListeners.push(listener);
  }

  /** Stops routing anything here; the caller writes what it holds, then calls stop(). */
  leave(): void {
    this.membership.setLeaving();
  }

  /** Tells every node the shards are written (after a clean stop's final flush), then goes quiet. */
  async stop(): Promise<void> {
    clearTimeout(this.settleTimer);
    for (const timer of this.handoffTimers) clearTimeout(timer);
    await this.releasing;
    if (this.map !== null) this.publishHandoff(this.liveIds(), this.leftShards);
    this.membership.stop();
    this.subscription?.unsubscribe();
    await this.nc.flush().catch(() => {});
  }

  ownerOf(shard: number): NodeInfo | undefined {
    const owner = this.map?.ownerOf(shard);
    return owner === undefined ? undefined : this.membership.node(owner);
  }

  /** This node owns the shard and its previous owner has handed it over. */
  serves(shard: number): boolean {
    return this.map !== null && this.map.ownerOf(shard) === this.selfId && !this.awaiting.has(shard);
  }

  /**
   * Resolves when this node serves the shard, or when the map gives it to another node
   * (the caller checks serves() again); at once when neither is pending.
   */
  whenSettled(shard: number): Promise<void> {
    if (this.map === null) return new Promise<void>((resolve) => this.onReady(() => resolve())).then(() => this.whenSettled(shard));
    if (!this.awaiting.has(shard)) return Promise.resolve();
    return new Promise((resolve) => {
      let list = this.waiters.get(shard);
      if (list === undefined) this.waiters.set(shard, (list = []));
      list.push(resolve);
    });
  }

  shardsOwned(): number {
    return this.map?.shardsOf(this.selfId) ?? 0;
  }

  /** Nodes in the map: alive, ready and not leaving. */
  private liveIds(): number[] {
    const ids: number[] = [];
    for (const node of this.membership.nodes()) if (node.ready && !node.leaving) ids.push(node.id);
    return ids.sort((a, b) => a - b);
  }

  private remap(): void {
    const ids = this.liveIds();
    const alive = new Set(this.membership.nodes().map((node) => node.id));
    // A node handing shards over that vanished meanwhile will never finish.
    for (const [shard, from] of this.awaiting) if (!alive.has(from)) this.serve(shard, true);
    if (this.map !== null && sameIds(this.map.nodes, ids)) {
      // Same map (say, a node restarted under the same id): tell it this node has nothing to hand over.
      this.releasing = this.releasing.then(() => this.publishHandoff(ids, []));
      return;
    }
    const previous = this.map ?? new ShardMap(this.options.shards, ids.filter((id) => id !== this.selfId));
    const next = new ShardMap(this.options.shards, ids);
    this.map = next;
    this.counters.mapChanges++;
    // Leaving: the stop that follows sends the clients on, writes everything and then hands
    // every shard over at once (stop()); a hand-off now would come before that last write.
    if (this.membership.self.leaving) {
      for (let shard = 0; shard < this.options.shards; shard++) if (previous.ownerOf(shard) === this.selfId) this.leftShards.push(shard);
      return;
    }
    const lost = new Set<number>();
    const orphaned = new Set<number>();
    const handedOver = new Set<number>();
    for (let shard = 0; shard < this.options.shards; shard++) {
      const before = previous.ownerOf(shard);
      const after = next.ownerOf(shard);
      if (before === this.selfId && after !== this.selfId) {
        lost.add(shard);
        this.awaiting.delete(shard);
        this.wake(shard);
      } else if (after === this.selfId && before !== this.selfId) {
        if (before !== -1 && alive.has(before)) {
          this.awaiting.set(shard, before);
          handedOver.add(shard);
        } else {
          orphaned.add(shard);
        }
      }
    }
    this.log.info({ nodes: ids, owned: next.shardsOf(this.selfId), lost: lost.size, gainedFromLive: handedOver.size, gainedOrphaned: orphaned.size }, 'shard map changed');
    if (orphaned.size > 0) {
      this.counters.shardsGained += orphaned.size;
      this.hooks.gained(orphaned, true);
    }
    if (handedOver.size > 0) this.expectHandoffs(handedOver);
    // Release in order, and say so even when nothing was lost: nodes waiting on this one
    // learn that it has acted on a map that includes them.
    this.releasing = this.releasing.then(async () => {
      if (lost.size > 0) {
        try {
          await this.hooks.release(lost, next);
        } catch (error) {
          this.log.error({ err: error, shards: lost.size }, 'releasing shards failed; the new owners take them after their timeout');
          return;
        }
        this.counters.shardsReleased += lost.size;
      }
      this.publishHandoff(ids, [...lost]);
    });
  }

  private expectHandoffs(shards: Set<number>): void {
    // A hand-off may have been heard before this node's map was computed.
    for (const [from, actedOn] of this.heardHandoffs) this.handedOverBy(from, actedOn);
    const pending = [...shards].filter((shard) => this.awaiting.has(shard));
    if (pending.length === 0) return;
    const timer = setTimeout(() => {
      this.handoffTimers.delete(timer);
      const late = pending.filter((shard) => this.awaiting.has(shard));
      if (late.length === 0) return;
      this.log.warn({ shards: late.length }, 'hand-off timed out: serving the shards without it');
      for (const shard of late) this.serve(shard, false);
    }, this.options.handoffTimeoutMs);
    timer.unref();
    this.handoffTimers.add(timer);
  }

  private heardHandoff(handoff: Handoff): void {
    if (typeof handoff?.from !== 'number' || !Array.isArray(handoff.nodes) || !handoff.nodes.every(Number.isInteger) || handoff.from === this.selfId) return;
    this.log.debug({ from: handoff.from, nodes: handoff.nodes, released: handoff.released?.length }, 'hand-off heard');
    const actedOn = new ShardMap(this.options.shards, handoff.nodes);
    this.heardHandoffs.set(handoff.from, actedOn);
    this.handedOverBy(handoff.from, actedOn);
  }

  /** `from` has acted on the map `actedOn`: it no longer serves the shards that map gives to others. */
  private handedOverBy(from: number, actedOn: ShardMap): void {
    for (const [shard, owner] of this.awaiting) if (owner === from && actedOn.ownerOf(shard) !== from) this.serve(shard, false);
  }

  /** Also when the handing node vanished: membership removes it, remap sees it gone. */
  private serve(shard: number, orphaned: boolean): void {
    if (!this.awaiting.delete(shard)) return;
    this.counters.shardsGained++;
    this.hooks.gained(new Set([shard]), orphaned);
    this.wake(shard);
  }

  private wake(shard: number): void {
    const list = this.waiters.get(shard);
    if (list === undefined) return;
    this.waiters.delete(shard);
    for (const resolve of list) resolve();
  }

  private publishHandoff(nodes: number[], released: number[]): void {
    const handoff: Handoff = { from: this.selfId, nodes, released };
    try {
      this.nc.publish(`${this.prefix}.handoff`, JSON.stringify(handoff));
    } catch (error) {
      // Closing: the others learn from the missing heartbeats instead.
      this.log.warn({ err: error }, 'publishing a hand-off failed');
    }
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
