// What the admin API's calls do (docs/protocol.md "HTTP API"), apart from HTTP itself: apply
// the change to the read states and tell the online sessions, and answer with a status and
// a body. http-api.ts parses requests and writes these answers; a cluster node runs the same
// operations on the node that owns the user (src/cluster/admin-forwarding.ts).

import type { Failure } from '../store/persistent-read-states.js';
import type { Dispatcher } from './dispatch.js';
import type { ReadStateService } from './read-state-service.js';

/** An HTTP answer: status and JSON body (null: no body, as with 204). */
export interface AdminAnswer {
  status: number;
  body: unknown;
}

export interface MessageBody {
  authorId: string;
  mentions: string[];
  mentionEveryone: boolean;
}

export interface AdminOperations {
  join(channelId: string, userId: string): Promise<AdminAnswer>;
  leave(channelId: string, userId: string): Promise<AdminAnswer>;
  postMessage(channelId: string, message: MessageBody): Promise<AdminAnswer>;
  readStates(userId: string): Promise<AdminAnswer>;
}

const FAILURE_ANSWERS: Record<Failure['code'], AdminAnswer> = {
  10003: { status: 404, body: { code: 10003, message: 'Unknown Channel' } },
  10008: { status: 404, body: { code: 10008, message: 'Unknown Message' } },
  50001: { status: 403, body: { code: 50001, message: 'Missing Access' } },
  4000: { status: 503, body: { code: 4000, message: 'Store unavailable' } },
};

export function failureAnswer(failure: Failure): AdminAnswer {
  return FAILURE_ANSWERS[failure.code];
}

const NO_CONTENT: AdminAnswer = { status: 204, body: null };

/** The operations applied on this process's read states and sessions. */
export class LocalAdminOperations implements AdminOperations {
  constructor(
    private readonly service: ReadStateService,
    private readonly dispatcher: Dispatcher,
  ) {}

  async join(channelId: string, userId: string): Promise<AdminAnswer> {
    const result = await this.service.join(channelId, userId);
    if (result.code !== 0) return failureAnswer(result);
    if (result.created) this.dispatcher.joined(userId, result.state);
    return NO_CONTENT;
  }

  async leave(channelId: string, userId: string): Promise<AdminAnswer> {
    const result = await this.service.leave(channelId, userId);
    if (result.code !== 0) return failureAnswer(result);
    if (result.removed) this.dispatcher.left(userId, channelId);
    return NO_CONTENT;
  }

  async postMessage(channelId: string, message: MessageBody): Promise<AdminAnswer> {
    const result = await this.service.createMessage(channelId, message.authorId, message.mentions, message.mentionEveryone);
    if (result.code !== 0) return failureAnswer(result);
    this.dispatcher.messageCreated(result, message.authorId);
    return { status: 200, body: { message_id: result.messageId } };
  }

  async readStates(userId: string): Promise<AdminAnswer> {
    try {
      return { status: 200, body: await this.service.loadUser(userId) };
    } catch {
      return failureAnswer({ code: 4000 });
    }
  }
}
