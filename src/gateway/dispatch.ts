// Who is online, and telling them: user id -> sessions, channel id -> online members, and
// the READ_STATE_UPDATE / READ_STATE_DELETE sends that follow every change.
//
// Channel membership of online users is learnt from READY (every channel the user is a
// member of) and kept current by the membership calls of the HTTP API, the only way
// membership changes. A member's state is encoded once per encoding and the frame reused
// for each of the user's sessions; only the requesting session gets the nonce.

import type { Logger } from 'pino';
import { emptyView } from '../engine/read-states.js';
import type { CreateResult, ReadStateJson } from '../store/persistent-read-states.js';
import { type Nonce, PreparedReadState } from './codec.js';
import type { ReadStateService } from './read-state-service.js';
import type { Session } from './session.js';

interface OnlineUser {
  sessions: Session[];
  /** Channels the user is a member of. */
  channels: Set<string>;
}

export class Dispatcher {
  private readonly users = new Map<string, OnlineUser>();
  /** Channel id -> ids of its members that are online. */
  private readonly channels = new Map<string, Set<string>>();
  /** A member's state, read into this for each member a message changed, */
  private readonly view = emptyView();
  /** and prepared in this for its sessions: nothing is allocated per member. */
  private readonly memberUpdate = PreparedReadState.reusable();

  constructor(
    private readonly readStates: ReadStateService,
    private readonly log: Logger,
  ) {}

  get onlineUsers(): number {
    return this.users.size;
  }

  /** An identified session, with the channels its READY listed. */
  register(session: Session, channelIds: readonly string[]): void {
    const userId = session.userId!;
    let user = this.users.get(userId);
    if (user === undefined) {
      user = { sessions: [], channels: new Set() };
      this.users.set(userId, user);
    }
    for (const channelId of channelIds) this.addMember(user, userId, channelId);
    user.sessions.push(session);
  }

  unregister(session: Session): void {
    const userId = session.userId!;
    const user = this.users.get(userId);
    if (user === undefined) return;
    const at = user.sessions.indexOf(session);
    if (at !== -1) user.sessions.splice(at, 1);
    if (user.sessions.length > 0) return;
    this.users.delete(userId);
    for (const channelId of user.channels) this.removeMember(userId, channelId);
  }

  /** The user's state changed (an ack): every session of the user is told, the requester with its nonce. */
  readStateChanged(userId: string, state: ReadStateJson, origin?: Session, nonce?: Nonce): void {
    const update = PreparedReadState.ofState(state);
    origin?.sendReadState(update, nonce);
    this.sendToUser(userId, update, origin);
  }

  /** The user became a member: its sessions get the (fully read) state. */
  joined(userId: string, state: ReadStateJson): void {
    const user = this.users.get(userId);
    if (user === undefined) return;
    this.addMember(user, userId, state.channel_id);
    this.sendToUser(userId, PreparedReadState.ofState(state), undefined);
  }

  /** The user stopped being a member: its sessions get READ_STATE_DELETE. */
  left(userId: string, channelId: string): void {
    const user = this.users.get(userId);
    if (user === undefined) return;
    user.channels.delete(channelId);
    this.removeMember(userId, channelId);
    for (const session of user.sessions) session.sendDelete(channelId);
  }

  /**
   * A message was posted: every online member's state changed (its unread count or, for
   * the author, its ack). The requester gets the author's state first, with the nonce.
   */
  messageCreated(result: CreateResult, authorId: string, origin?: Session, nonce?: Nonce): void {
    const authorState = result.changed.get(authorId);
    if (origin !== undefined && authorState !== undefined) {
      const update = PreparedReadState.ofState(authorState);
      origin.sendReadState(update, nonce);
      // Told already when the message was applied (a cluster node): the requester's answer was all that was left.
      if (result.membersTold !== true) this.sendToUser(authorId, update, origin);
    }
    if (result.membersTold !== true) this.membersChanged(result, origin !== undefined ? authorId : undefined);
  }

  /** Every online member of the channel but `except` is told its new state (the author's sessions are told by messageCreated). */
  membersChanged(result: CreateResult, except: string | undefined): void {
    const { channelId, changed } = result;
    const members = this.channels.get(channelId);
    const missing: string[] = [];
    if (members !== undefined) {
      for (const userId of members) {
        if (userId === except) continue;
        const state = changed.get(userId);
        if (state !== undefined) this.sendToUser(userId, PreparedReadState.ofState(state), undefined);
        else if (this.readStates.viewInto(userId, channelId, this.view)) this.sendToUser(userId, this.memberUpdate.setView(this.view), undefined);
        else missing.push(userId);
      }
    }
    // Changed states of online users the channel index does not list (it should list them all).
    for (const [userId, state] of changed) {
      if (userId === except || members?.has(userId) === true || !this.users.has(userId)) continue;
      this.sendToUser(userId, PreparedReadState.ofState(state), undefined);
    }
    // States evicted from memory meanwhile: the view loaded later is the newest one, so
    // arriving after a newer update cannot move a client backwards.
    for (const userId of missing) {
      this.readStates.view(userId, channelId).then(
        (state) => {
          if (state !== null) this.sendToUser(userId, PreparedReadState.ofState(state), undefined);
        },
        (error: unknown) => this.log.warn({ err: error, user: userId, channel: channelId }, 'loading a member state for fan-out failed'),
      );
    }
  }

  private sendToUser(userId: string, update: PreparedReadState, except: Session | undefined): void {
    const user = this.users.get(userId);
    if (user === undefined) return;
    for (const session of user.sessions) if (session !== except) session.sendReadState(update, undefined);
  }

  private addMember(user: OnlineUser, userId: string, channelId: string): void {
    user.channels.add(channelId);
    let members = this.channels.get(channelId);
    if (members === undefined) {
      members = new Set();
      this.channels.set(channelId, members);
    }
    members.add(userId);
  }

  private removeMember(userId: string, channelId: string): void {
    const members = this.channels.get(channelId);
    if (members === undefined) return;
    members.delete(userId);
    if (members.size === 0) this.channels.delete(channelId);
  }
}
