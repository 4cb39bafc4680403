import { describe, expect, it } from 'vitest';
import type { ReadState } from '../../src/client/gateway-client.js';
import { DemoReadStates } from '../../src/demo/browser/demo-read-states.js';

// The demo page's reading rules, without a browser: which acks follow from opening a channel
// and from the updates the gateway pushes.

const GENERAL = '1187436250460170001';
const RANDOM = '1187436250460170002';

function state(channelId: string, lastMessage: string | null, lastAcked: string | null, unread: number, mentions = 0): ReadState {
  return { channel_id: channelId, last_message_id: lastMessage, last_acked_id: lastAcked, unread_count: unread, mention_count: mentions };
}

function setup(visible = true) {
  const acks: Array<[string, string]> = [];
  const states = new DemoReadStates((channelId, messageId) => acks.push([channelId, messageId]), { visible });
  return { acks, states };
}

describe('DemoReadStates', () => {
  it('acks the newest message of a channel when it is opened, once', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, '900000000000000003', '900000000000000001', 2, 1), state(RANDOM, '900000000000000005', null, 1)]);
    expect(acks).toEqual([]);
    states.openChannel(GENERAL);
    states.openChannel(GENERAL);
    expect(states.openChannelId).toBe(GENERAL);
    expect(acks).toEqual([[GENERAL, '900000000000000003']]);
  });

  it('sends nothing for a channel that is read or has no messages', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, '900000000000000003', '900000000000000003', 0), state(RANDOM, null, null, 0)]);
    states.openChannel(GENERAL);
    states.openChannel(RANDOM);
    expect(acks).toEqual([]);
  });

  it('reads a new message in the open channel at once, but not in the others', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, '900000000000000003', '900000000000000003', 0), state(RANDOM, '900000000000000005', '900000000000000005', 0)]);
    states.openChannel(GENERAL);
    states.update(state(RANDOM, '900000000000000006', '900000000000000005', 1));
    states.update(state(GENERAL, '900000000000000007', '900000000000000003', 1, 1));
    expect(acks).toEqual([[GENERAL, '900000000000000007']]);
    // The update that answers the ack, and the same state pushed to another device, send nothing more.
    states.update(state(GENERAL, '900000000000000007', '900000000000000007', 0));
    states.update(state(GENERAL, '900000000000000007', '900000000000000007', 0));
    expect(acks).toEqual([[GENERAL, '900000000000000007']]);
  });

  it('leaves the open channel unread while the page is hidden, and reads it when shown', () => {
    const { acks, states } = setup(true);
    states.reset([state(GENERAL, '900000000000000003', '900000000000000003', 0)]);
    states.openChannel(GENERAL);
    states.setVisible(false);
    states.update(state(GENERAL, '900000000000000008', '900000000000000003', 1));
    expect(acks).toEqual([]);
    states.setVisible(true);
    expect(acks).toEqual([[GENERAL, '900000000000000008']]);
  });

  it('forgets its acks on a new READY, so a reconnect reads the open channel again', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, '900000000000000003', null, 3)]);
    states.openChannel(GENERAL);
    // The ack was lost with the socket: READY after the reconnect still shows it unread.
    states.reset([state(GENERAL, '900000000000000003', null, 3)]);
    expect(states.openChannelId).toBe(GENERAL);
    expect(acks).toEqual([
      [GENERAL, '900000000000000003'],
      [GENERAL, '900000000000000003'],
    ]);
  });

  it('sends an ack again after a resume when it could not be sent, and not when it went out', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, '900000000000000003', null, 3)]);
    states.openChannel(GENERAL);
    // The socket was down: the page could not send it.
    states.ackNotSent(GENERAL, '900000000000000003');
    // Another message came while away, replayed by RESUME: the open channel is read up to it.
    states.update(state(GENERAL, '900000000000000004', null, 4));
    states.resumed();
    expect(acks).toEqual([
      [GENERAL, '900000000000000003'],
      [GENERAL, '900000000000000004'],
    ]);
    // That one went out: a second resume sends nothing more, nor does a stale failure report.
    states.ackNotSent(GENERAL, '900000000000000003');
    states.resumed();
    expect(acks).toHaveLength(2);
    // Lost with the socket it was sent on: sent again once the session is back.
    states.ackNotSent(GENERAL, '900000000000000004');
    states.resumed();
    expect(acks.at(-1)).toEqual([GENERAL, '900000000000000004']);
    expect(acks).toHaveLength(3);
  });

  it('closes the open channel when the user leaves it, and ignores opening an unknown one', () => {
    const { acks, states } = setup();
    states.reset([state(GENERAL, null, null, 0), state(RANDOM, null, null, 0)]);
    states.openChannel(GENERAL);
    states.remove(GENERAL);
    expect(states.openChannelId).toBeNull();
    expect(states.get(GENERAL)).toBeUndefined();
    states.openChannel(GENERAL);
    expect(states.openChannelId).toBeNull();
    states.openChannel(RANDOM);
    states.reset([state(GENERAL, null, null, 0)]);
    expect(states.openChannelId).toBeNull();
    expect(acks).toEqual([]);
  });
});
