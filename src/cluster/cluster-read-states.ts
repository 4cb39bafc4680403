// The read-state service of a cluster node (docs/protocol.md "Cluster"). The gateway calls
// it exactly as it calls the single-node PersistentReadStates, and it answers the same way:
// - a user's own states (READY, acks, joins, leaves, views) live only on the user's owner,
//   which is this node for every session and forwarded call that reaches it;
// - a message is given its id and position by the channel's owner: here when this node owns
//   the channel, else by a request to the owner, which applies it, publishes it to every
//   holder (ChannelReplicas) and answers with the id; the answer is given once this node
//   has applied the message too, so the author's state reflects it.

import type { ReadStateService } from '../gateway/read-state-service.js';
import { Outcome } from '../engine/read-states.js';
import type { AckResult, CreateResult, Failure, OwnsUser, PersistentReadStates, ReadStateJson } from '../store/persistent-read-states.js';
import type { ChannelReplicas } from './channel-replicas.js';
import { isMoved, type NodeRequests } from './node-requests.js';
import { shardOfId } from './shard-map.js';
import type { ShardOwnership } from './shard-ownership.js';

type Delegated = 'loadUser' | 'join' | 'leave' | 'viewOf' | 'viewInto' | 'view';

interface PostRequest {
  t: 'post';
  c: string;
  a: string;
  m: string[];
  e: boolean;
}

/** Longest wait of an ack for the message it names to arrive from the channel's owner. */
const ACK_WAIT_MS = 1000;

type PostAnswer = { code: 0; id: string } | { code: Failure['code'] };

export interface ClusterReadStatesOptions {
  local: PersistentReadStates;
  replicas: ChannelReplicas;
  ownership: ShardOwnership;
  requests: NodeRequests;
  shards: number;
  ownsUser: OwnsUser;
}

export class ClusterReadStates implements ReadStateService {
  readonly loadUser: PersistentReadStates['loadUser'];
  readonly join: PersistentReadStates['join'];
  readonly leave: PersistentReadStates['leave'];
  readonly viewOf: PersistentReadStates['viewOf'];
  readonly viewInto: PersistentReadStates['viewInto'];
  readonly view: PersistentReadStates['view'];
  /** Tells this node's online members (the author's sessions included) of a message applied here. Set by the wiring to the dispatcher. */
  membersChanged: (result: CreateResult) => void = () => {};
  private readonly local: PersistentReadStates;

  constructor(private readonly options: ClusterReadStatesOptions) {
    const local = options.local;
    this.local = local;
    const delegate = <K extends Delegated>(name: K) => (local[name] as (...args: unknown[]) => unknown).bind(local) as PersistentReadStates[K];
    this.loadUser = delegate('loadUser');
    this.join = delegate('join');
    this.leave = delegate('leave');
    this.viewOf = delegate('viewOf');
    this.viewInto = delegate('viewInto');
    this.view = delegate('view');
    options.requests.handle('post', (request) => this.postForAnotherNode(request as unknown as PostRequest));
  }

  get ready(): boolean {
    return this.local.ready && this.options.ownership.holdsMap;
  }

  get stats(): PersistentReadStates['stats'] {
    return this.local.stats;
  }

  /** An ack of a message not here yet goes the asynchronous way (ack), which waits for it. */
  ackResident(userId: string, channelId: string, messageId: string): AckResult | undefined {
    const result = this.local.ackResident(userId, channelId, messageId);
    return result?.code === Outcome.unknownMessage ? undefined : result;
  }

  /**
   * MESSAGE_ACK. A client may learn of a message (from another node's user, or the app's
   * back end) a moment before this node has applied it: an ack of an id newer than the
   * channel's newest waits up to ACK_WAIT_MS for it before answering Unknown Message.
   */
  async ack(userId: string, channelId: string, messageId: string): Promise<AckResult> {
    const result = await this.local.ack(userId, channelId, messageId);
    if (result.code !== Outcome.unknownMessage) return result;
    await this.options.replicas.whenApplied(channelId, messageId, ACK_WAIT_MS);
    return this.local.ack(userId, channelId, messageId);
  }

  /** Sequenced here at once when this node owns the channel and holds everything the message touches. */
  createResident(channelId: string, authorId: string, mentions: readonly string[], mentionEveryone: boolean): CreateResult | Failure | undefined {
    const shard = shardOfId(channelId, this.options.shards);
    if (!this.options.ownership.serves(shard) || !this.local.holds(authorId, channelId)) return undefined;
    const posted = this.local.postAsOwner(channelId, authorId, mentions, mentionEveryone, this.options.ownsUser);
    if (posted === undefined) return undefined;
    this.options.replicas.publish(posted.posted);
    return posted.result;
  }

  async createMessage(channelId: string, authorId: string, mentions: readonly string[], mentionEveryone: boolean): Promise<CreateResult | Failure> {
    const { local, ownership, requests, replicas } = this.options;
    try {
      if (!(await local.ensureChannel(channelId))) return { code: Outcome.unknownChannel };
      if (!(await local.ensureState(authorId, channelId))) return { code: Outcome.missingAccess };
    } catch {
      return { code: 4000 };
    }
    const shard = shardOfId(channelId, this.options.shards);
    await ownership.whenSettled(shard);
    if (ownership.serves(shard)) {
      const posted = local.postAsOwner(channelId, authorId, mentions, mentionEveryone, this.options.ownsUser);
      if (posted === undefined) return { code: 4000 };
      replicas.publish(posted.posted);
      return posted.result;
    }
    const request: PostRequest = { t: 'post', c: channelId, a: authorId, m: [...mentions], e: mentionEveryone };
    const answer = await requests.ask<PostAnswer>(async () => {
      await ownership.whenSettled(shard);
      return ownership.ownerOf(shard)?.id;
    }, { ...request });
    if (isMoved(answer)) return { code: 4000 };
    if (answer.code !== 0) return { code: answer.code };
    // The owner published the message before answering, on the same connection: it is
    // applied here (every session of this node, the author's too, told as it was), or on
    // its way. The answer waits for it, and is the author's state now: never older than an
    // update the author's sessions already have.
    await replicas.whenApplied(channelId, answer.id);
    const author = local.viewOf(authorId, channelId);
    const changed = new Map<string, ReadStateJson>();
    if (author !== undefined) changed.set(authorId, author);
    return { code: 0, messageId: answer.id, channelId, changed, membersTold: true };
  }

  /** The owner's side of createMessage for an author on another node (which checked the membership). */
  private async postForAnotherNode(request: PostRequest): Promise<unknown> {
    const { local, ownership, replicas } = this.options;
    const shard = shardOfId(request.c, this.options.shards);
    await ownership.whenSettled(shard);
    if (!ownership.serves(shard)) return { moved: true };
    try {
      if (!(await local.ensureChannel(request.c))) return { code: Outcome.unknownChannel } satisfies PostAnswer;
    } catch {
      return { code: 4000 } satisfies PostAnswer;
    }
    const posted = local.postAsOwner(request.c, request.a, request.m, request.e, this.options.ownsUser);
    if (posted === undefined) return { code: 4000 } satisfies PostAnswer;
    replicas.publish(posted.posted);
    this.membersChanged(posted.result);
    return { code: 0, id: posted.posted.messageId } satisfies PostAnswer;
  }

  /** A message another node sequenced was applied here (ChannelReplicas). */
  applied(result: CreateResult): void {
    this.membersChanged(result);
  }
}
