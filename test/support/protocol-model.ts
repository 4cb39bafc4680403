// The protocol's definitions of a read state (docs/protocol.md "The read state"), as a
// plain model that tests replay their traffic into and compare the gateway's answers with.
// Exact for channels far below the 1,000-message window.

import type { ReadState } from '../../src/client/gateway-client.js';
import { byChannel } from './gateway-harness.js';

interface ModelMessage {
  id: bigint;
  mentions: Set<string>;
  everyone: boolean;
}

export class ProtocolModel {
  readonly members = new Map<string, Set<string>>();
  readonly messages = new Map<string, ModelMessage[]>();
  readonly acks = new Map<string, bigint | null>();
  /** Every user ever joined, left ones included. */
  readonly users = new Set<string>();

  join(channel: string, user: string): void {
    if (!this.members.has(channel)) {
      this.members.set(channel, new Set());
      this.messages.set(channel, []);
    }
    const members = this.members.get(channel)!;
    this.users.add(user);
    if (members.has(user)) return;
    members.add(user);
    this.acks.set(`${user}:${channel}`, this.messages.get(channel)!.at(-1)?.id ?? null);
  }

  leave(channel: string, user: string): void {
    this.members.get(channel)!.delete(user);
    this.acks.delete(`${user}:${channel}`);
  }

  post(channel: string, author: string, id: string, mentions: string[], everyone: boolean): void {
    const members = this.members.get(channel)!;
    this.messages.get(channel)!.push({ id: BigInt(id), mentions: new Set(mentions.filter((m) => members.has(m) && m !== author)), everyone });
    this.acks.set(`${author}:${channel}`, BigInt(id));
  }

  ack(channel: string, user: string, id: string): void {
    const key = `${user}:${channel}`;
    const current = this.acks.get(key) ?? null;
    if (current === null || BigInt(id) > current) this.acks.set(key, BigInt(id));
  }

  statesOf(user: string): ReadState[] {
    const states: ReadState[] = [];
    for (const [channel, members] of this.members) {
      if (!members.has(user)) continue;
      const ack = this.acks.get(`${user}:${channel}`) ?? null;
      const messages = this.messages.get(channel)!;
      const newer = messages.filter((m) => ack === null || m.id > ack);
      const newest = messages.at(-1);
      states.push({
        channel_id: channel,
        last_message_id: newest === undefined ? null : newest.id.toString(),
        last_acked_id: ack === null ? null : ack.toString(),
        unread_count: newer.length,
        mention_count: newer.filter((m) => m.everyone || m.mentions.has(user)).length,
      });
    }
    return byChannel(states);
  }
}

/** A small seeded generator, so a failing test replays the same traffic. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}
