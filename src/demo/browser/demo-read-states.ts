// What one demo page knows of its user's read states, and the acks that follow from it.
// No DOM and no socket here: the page feeds in what the gateway dispatches and passes in how
// to send an ack, so this logic is tested in Node (test/unit/demo-read-states.test.ts).
//
// Reading rules, as a chat client has them:
// - opening a channel reads it: the newest message is acked;
// - while a channel is open and the page is visible, a new message in it is read at once;
//   a hidden page leaves it unread until it is shown again;
// - one ack per newest message: the updates that follow an ack (one per device) send no more;
// - an ack that could not be sent (the socket was down, or dropped before the gateway had it)
//   is sent again once the session is back.

import type { ReadState } from '../../client/gateway-client.js';

export type SendAck = (channelId: string, messageId: string) => void;

export class DemoReadStates {
  private readonly states = new Map<string, ReadState>();
  /** Newest message an ack was sent for, per channel. */
  private readonly ackSent = new Map<string, string>();
  private open: string | null = null;
  private visible: boolean;

  constructor(
    private readonly sendAck: SendAck,
    options: { visible: boolean },
  ) {
    this.visible = options.visible;
  }

  get openChannelId(): string | null {
    return this.open;
  }

  get(channelId: string): ReadState | undefined {
    return this.states.get(channelId);
  }

  all(): ReadState[] {
    return [...this.states.values()];
  }

  /** READY: the session's whole picture (after a reconnect too, so earlier acks are forgotten). */
  reset(states: readonly ReadState[]): void {
    this.states.clear();
    this.ackSent.clear();
    for (const state of states) this.states.set(state.channel_id, state);
    if (this.open !== null && !this.states.has(this.open)) this.open = null;
    this.readOpenChannel();
  }

  /** READ_STATE_UPDATE. */
  update(state: ReadState): void {
    this.states.set(state.channel_id, state);
    if (state.channel_id === this.open) this.readOpenChannel();
  }

  /**
   * The ack for `messageId` did not reach the gateway (no socket, or it dropped first): it no
   * longer counts as sent, so the next read of the channel sends it again.
   */
  ackNotSent(channelId: string, messageId: string): void {
    if (this.ackSent.get(channelId) === messageId) this.ackSent.delete(channelId);
  }

  /**
   * The session came back without a READY (RESUMED): the updates it missed have been applied;
   * the open channel is read again if an ack of it was lost meanwhile or a message came in.
   */
  resumed(): void {
    this.readOpenChannel();
  }

  /** READ_STATE_DELETE: the user left the channel. */
  remove(channelId: string): void {
    this.states.delete(channelId);
    this.ackSent.delete(channelId);
    if (this.open === channelId) this.open = null;
  }

  /** The user opened a channel: it is read whatever the visibility (the user is looking at it). */
  openChannel(channelId: string): void {
    if (!this.states.has(channelId)) return;
    this.open = channelId;
    this.ackNewest(channelId);
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    this.readOpenChannel();
  }

  private readOpenChannel(): void {
    if (this.open !== null && this.visible) this.ackNewest(this.open);
  }

  private ackNewest(channelId: string): void {
    const state = this.states.get(channelId);
    if (state === undefined || state.last_message_id === null || state.last_message_id === state.last_acked_id) return;
    if (this.ackSent.get(channelId) === state.last_message_id) return;
    this.ackSent.set(channelId, state.last_message_id);
    this.sendAck(channelId, state.last_message_id);
  }
}
