// A channel's window of recent messages as one `blob` cell.
//
// Why a blob and not a CQL collection: the window is rewritten whole on every channel write,
// and a frozen list of tuples would take ~3x the bytes (a length prefix on every element and
// field) and one driver object per element to encode. One cell also keeps the write a plain
// idempotent overwrite, with no collection tombstones.
//
// Layout, big-endian:
//   u8  format (1)
//   u32 message count, then per message, oldest first:
//     u32 id hi, u32 id lo, u8 flags (bit 0: mention_everyone),
//     u16 explicit mention count, then per mention: u32 user hi, u32 user lo

import { allocateWindow, type RecentWindow, windowLength } from './recent-window.js';

const FORMAT = 1;
const HEADER_BYTES = 5;
const MESSAGE_BYTES = 11;
const MENTION_BYTES = 8;
const EVERYONE = 1;

export function encodeWindow(window: RecentWindow): Buffer {
  const count = windowLength(window);
  const mentions = window.mentionedUsers.length / 2;
  const out = Buffer.allocUnsafe(HEADER_BYTES + MESSAGE_BYTES * count + MENTION_BYTES * mentions);
  let at = out.writeUInt8(FORMAT, 0);
  at = out.writeUInt32BE(count, at);
  let mention = 0;
  for (let i = 0; i < count; i++) {
    at = out.writeUInt32BE(window.ids[2 * i], at);
    at = out.writeUInt32BE(window.ids[2 * i + 1], at);
    at = out.writeUInt8(window.everyone[i] === 1 ? EVERYONE : 0, at);
    const mentionCount = window.mentionCounts[i];
    at = out.writeUInt16BE(mentionCount, at);
    for (const end = mention + mentionCount; mention < end; mention++) {
      at = out.writeUInt32BE(window.mentionedUsers[2 * mention], at);
      at = out.writeUInt32BE(window.mentionedUsers[2 * mention + 1], at);
    }
  }
  if (mention !== mentions) throw new RangeError(`window mention counts add up to ${mention}, but it holds ${mentions} mentions`);
  return out;
}

/** The window held in `blob`; throws if it is not a complete window in a known format. */
export function decodeWindow(blob: Buffer): RecentWindow {
  if (blob.length < HEADER_BYTES || blob.readUInt8(0) !== FORMAT) {
    throw new RangeError(`channel window blob: unknown format ${blob.length === 0 ? '(empty)' : blob.readUInt8(0)}`);
  }
  const count = blob.readUInt32BE(1);
  if (HEADER_BYTES + MESSAGE_BYTES * count > blob.length) throw new RangeError('channel window blob: truncated');
  // First pass: the mention total, so every column is allocated once at its final size.
  let mentions = 0;
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + MESSAGE_BYTES > blob.length) throw new RangeError('channel window blob: truncated');
    const mentionCount = blob.readUInt16BE(at + 9);
    mentions += mentionCount;
    at += MESSAGE_BYTES + MENTION_BYTES * mentionCount;
  }
  if (at > blob.length) throw new RangeError('channel window blob: truncated');
  if (at < blob.length) throw new RangeError('channel window blob: trailing bytes');
  const window = allocateWindow(count, mentions);
  at = HEADER_BYTES;
  let mention = 0;
  for (let i = 0; i < count; i++) {
    window.ids[2 * i] = blob.readUInt32BE(at);
    window.ids[2 * i + 1] = blob.readUInt32BE(at + 4);
    window.everyone[i] = blob.readUInt8(at + 8) & EVERYONE;
    const mentionCount = blob.readUInt16BE(at + 9);
    window.mentionCounts[i] = mentionCount;
    at += MESSAGE_BYTES;
    for (const end = mention + mentionCount; mention < end; mention++, at += MENTION_BYTES) {
      window.mentionedUsers[2 * mention] = blob.readUInt32BE(at);
      window.mentionedUsers[2 * mention + 1] = blob.readUInt32BE(at + 4);
    }
  }
  return window;
}
