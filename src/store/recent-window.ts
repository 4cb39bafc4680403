// A channel's window of recent messages as the store carries it: four packed columns, not an
// object and a string per message. A flush writes thousands of channels with up to 1,000
// messages each; as objects with decimal-string ids that was millions of short-lived
// allocations per flush and a format-then-parse round trip per id, which held the event loop
// for 25-45 ms at a time (store bench, CPU profile). Columns copy straight from the engine's
// rings and into the blob.

import { formatSnowflake, parseSnowflake } from '../engine/snowflake.js';

/** Ids are snowflakes as 32-bit halves: [hi, lo] per entry. */
export interface RecentWindow {
  /** Message ids, oldest first. */
  ids: Uint32Array;
  /** Per message: 1 when it mentions everyone. */
  everyone: Uint8Array;
  /** Per message: how many users it explicitly mentions. */
  mentionCounts: Uint16Array;
  /** The explicitly mentioned users, in message order. */
  mentionedUsers: Uint32Array;
}

/** A message of a window, in readable form (tests, tools). */
export interface WindowMessage {
  id: string;
  mentionsEveryone: boolean;
  /** Users explicitly mentioned (members only; empty when mentionsEveryone). */
  mentions: string[];
}

/** At most this many explicit mentions per message fit the window's format. */
export const MAX_WINDOW_MENTIONS = 0xffff;

/** A window of `messages` messages and `mentions` explicit mentions in all, zero-filled. */
export function allocateWindow(messages: number, mentions: number): RecentWindow {
  return {
    ids: new Uint32Array(2 * messages),
    everyone: new Uint8Array(messages),
    mentionCounts: new Uint16Array(messages),
    mentionedUsers: new Uint32Array(2 * mentions),
  };
}

export function emptyWindow(): RecentWindow {
  return allocateWindow(0, 0);
}

export function windowLength(window: RecentWindow): number {
  return window.everyone.length;
}

export function windowOfMessages(messages: readonly WindowMessage[]): RecentWindow {
  const window = allocateWindow(messages.length, messages.reduce((sum, m) => sum + m.mentions.length, 0));
  let mention = 0;
  messages.forEach((message, i) => {
    if (message.mentions.length > MAX_WINDOW_MENTIONS) throw new RangeError(`a window message mentions at most ${MAX_WINDOW_MENTIONS} users`);
    setHalves(window.ids, i, message.id);
    window.everyone[i] = message.mentionsEveryone ? 1 : 0;
    window.mentionCounts[i] = message.mentions.length;
    for (const user of message.mentions) setHalves(window.mentionedUsers, mention++, user);
  });
  return window;
}

export function messagesOfWindow(window: RecentWindow): WindowMessage[] {
  const messages: WindowMessage[] = [];
  let mention = 0;
  for (let i = 0; i < windowLength(window); i++) {
    const mentions: string[] = [];
    for (let k = 0; k < window.mentionCounts[i]; k++) mentions.push(halvesAt(window.mentionedUsers, mention++));
    messages.push({ id: halvesAt(window.ids, i), mentionsEveryone: window.everyone[i] === 1, mentions });
  }
  return messages;
}

function setHalves(column: Uint32Array, i: number, id: string): void {
  if (!parseSnowflake(id, column, 2 * i)) throw new RangeError(`not a snowflake: ${JSON.stringify(id)}`);
}

function halvesAt(column: Uint32Array, i: number): string {
  return formatSnowflake(column[2 * i], column[2 * i + 1]);
}
