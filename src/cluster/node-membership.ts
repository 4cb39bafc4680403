// Which gateway nodes are alive (docs/protocol.md "Cluster"), learnt over NATS: every node
// publishes a heartbeat on `<prefix>.nodes` every heartbeatMs and forgets a node it has not
// heard from for expireMs. No list of nodes is configured anywhere; a node that is killed
// leaves every other node's view within expireMs, and one that stops cleanly says so in
// its last heartbeats (`leaving`) so the others stop routing to it at once.
//
// Core NATS (at-most-once) is enough here: a lost heartbeat is covered by the next one.

import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface NodeInfo {
  id: number;
  /** The ws URL clients use to reach the node (GATEWAY_PUBLIC_URL). */
  url: string;
  /** The node holds its shard map and serves (its /readyz may still wait for the store). */
  ready: boolean;
  /** The node is stopping: it takes no new users and hands its shards over. */
  leaving: boolean;
}

export interface NodeMembershipOptions {
  heartbeatMs: number;
  /** A node not heard from for this long is gone. */
  expireMs: number;
}

interface Heartbeat extends NodeInfo {
  /** Distinguishes a restarted node (same id) from its previous life. */
  startedAt: number;
}

export class NodeMembership {
  private readonly others = new Map<number, { info: NodeInfo; startedAt: number; seenAt: number }>();
  private readonly listeners: Array<() => void> = [];
  private readonly startedAt = Date.now();
  private subscription: Subscription | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  readonly self: NodeInfo;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    self: { id: number; url: string },
    private readonly options: NodeMembershipOptions,
    private readonly log: Logger,
  ) {
    this.self = { id: self.id, url: self.url, ready: false, leaving: false };
  }

  start(): void {
    this.subscription = this.nc.subscribe(this.subject, {
      callback: (error, message) => {
        if (error !== null) return this.log.warn({ err: error }, 'membership subscription failed');
        let beat: Heartbeat;
        try {
          beat = message.json<Heartbeat>();
        } catch {
          return this.log.warn('malformed heartbeat ignored');
        }
        this.heard(beat);
      },
    });
    this.heartbeatTimer = setInterval(() => this.beat(), this.options.heartbeatMs);
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(50, Math.floor(this.options.heartbeatMs / 2)));
    this.beat();
  }

  stop(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.subscription?.unsubscribe();
  }

  /** Called after every change of the live set or of a node's flags. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The node with `id` if it is this one or was heard from recently. */
  node(id: number): NodeInfo | undefined {
    return id === this.self.id ? this.self : this.others.get(id)?.info;
  }

  /** Every node heard from recently, this one included. */
  nodes(): NodeInfo[] {
    return [this.self, ...[...this.others.values()].map((other) => other.info)];
  }

  setReady(): void {
    this.self.ready = true;
    this.beat();
    this.changed();
  }

  /** From now on the others route nothing here; heartbeats go on until stop(). */
  setLeaving(): void {
    this.self.leaving = true;
    this.beat();
    this.changed();
  }

  private beat(): void {
    const beat: Heartbeat = { ...this.self, startedAt: this.startedAt };
    this.nc.publish(this.subject, JSON.stringify(beat));
  }

  private heard(beat: Heartbeat): void {
    if (typeof beat?.id !== 'number' || typeof beat.url !== 'string') return;
    if (beat.id === this.self.id) {
      if (beat.startedAt !== this.startedAt) this.log.error({ node: beat.id, url: beat.url }, 'another node uses this GATEWAY_NODE_ID: node ids must be unique');
      return;
    }
    const known = this.others.get(beat.id);
    const now = Date.now();
    const info: NodeInfo = { id: beat.id, url: beat.url, ready: beat.ready === true, leaving: beat.leaving === true };
    this.others.set(beat.id, { info, startedAt: beat.startedAt, seenAt: now });
    const restarted = known !== undefined && known.startedAt !== beat.startedAt;
    if (known === undefined || restarted || known.info.ready !== info.ready || known.info.leaving !== info.leaving || known.info.url !== info.url) {
      if (restarted) this.log.info({ node: beat.id }, 'node restarted');
      this.changed();
    }
  }

  private sweep(): void {
    const now = Date.now();
    let gone = false;
    for (const [id, other] of this.others) {
      if (now - other.seenAt <= this.options.expireMs) continue;
      this.others.delete(id);
      this.log.warn({ node: id, silentMs: now - other.seenAt }, 'node stopped answering: removed from the cluster');
      gone = true;
    }
    if (gone) this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
