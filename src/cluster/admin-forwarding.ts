// The admin API on a cluster node (docs/protocol.md "Cluster": every /v1/* call works on
// every node, with the same answers as on one node): a call about a user this node does
// not serve is run by the node that does, through a node request, and its answer returned
// as is. Joins, leaves and reads are about their user; a posted message about its author,
// whose node checks the membership and has the channel's owner sequence it.

import type { AdminAnswer, AdminOperations, MessageBody } from '../gateway/admin-operations.js';
import { isMoved, MOVED, type NodeRequests } from './node-requests.js';
import { shardOfId } from './shard-map.js';
import type { ShardOwnership } from './shard-ownership.js';

type Operation = 'join' | 'leave' | 'postMessage' | 'readStates';

interface ForwardedCall {
  t: 'admin';
  op: Operation;
  channelId: string;
  userId: string;
  message: MessageBody | null;
}

const OWNER_UNREACHABLE: AdminAnswer = { status: 503, body: { code: 4000, message: 'The node serving this user is unreachable' } };

export class ForwardedAdminOperations implements AdminOperations {
  constructor(
    private readonly local: AdminOperations,
    private readonly ownership: ShardOwnership,
    private readonly requests: NodeRequests,
    private readonly shards: number,
  ) {
    requests.handle('admin', (request) => this.runForAnotherNode(request as unknown as ForwardedCall));
  }

  join(channelId: string, userId: string): Promise<AdminAnswer> {
    return this.run({ t: 'admin', op: 'join', channelId, userId, message: null });
  }

  leave(channelId: string, userId: string): Promise<AdminAnswer> {
    return this.run({ t: 'admin', op: 'leave', channelId, userId, message: null });
  }

  postMessage(channelId: string, message: MessageBody): Promise<AdminAnswer> {
    return this.run({ t: 'admin', op: 'postMessage', channelId, userId: message.authorId, message });
  }

  readStates(userId: string): Promise<AdminAnswer> {
    return this.run({ t: 'admin', op: 'readStates', channelId: '', userId, message: null });
  }

  private async run(call: ForwardedCall): Promise<AdminAnswer> {
    const shard = shardOfId(call.userId, this.shards);
    await this.ownership.whenSettled(shard);
    if (this.ownership.serves(shard)) return this.runHere(call);
    const answer = await this.requests.ask<AdminAnswer>(async () => {
      await this.ownership.whenSettled(shard);
      return this.ownership.ownerOf(shard)?.id;
    }, { ...call });
    return isMoved(answer) ? OWNER_UNREACHABLE : answer;
  }

  private async runForAnotherNode(call: ForwardedCall): Promise<unknown> {
    const shard = shardOfId(call.userId, this.shards);
    await this.ownership.whenSettled(shard);
    return this.ownership.serves(shard) ? this.runHere(call) : MOVED;
  }

  private runHere(call: ForwardedCall): Promise<AdminAnswer> {
    switch (call.op) {
      case 'join':
        return this.local.join(call.channelId, call.userId);
      case 'leave':
        return this.local.leave(call.channelId, call.userId);
      case 'postMessage':
        return this.local.postMessage(call.channelId, call.message!);
      case 'readStates':
        return this.local.readStates(call.userId);
    }
  }
}
