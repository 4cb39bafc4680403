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

import { formatSnowflake, parseSnowflake } from '../engine/snowflake.js';
import type { WindowMessage } from './records.js';

const FORMAT = 1;
const HEADER_BYTES = 5;
const MESSAGE_BYTES = 11;
const MENTION_BYTES = 8;
const EVERYONE = 1;
const MAX_MENTIONS = 0xffff;

const halves = new Uint32Array(2);

export function encodeWindow(window: readonly WindowMessage[]): Buffer {
  let size = HEADER_BYTES;
  for (const message of window) {
    if (message.mentions.length > MAX_MENTIONS) {
      throw new RangeError(`message ${message.id} has ${message.mentions.length} mentions; at most ${MAX_MENTIONS} fit`);
    }
    size += MESSAGE_BYTES + MENTION_BYTES * message.mentions.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(FORMAT, 0);
  at = out.writeUInt32BE(window.length, at);
  for (const message of window) {
    at = writeId(out, at, message.id);
    at = out.writeUInt8(message.mentionsEveryone ? EVERYONE : 0, at);
    at = out.writeUInt16BE(message.mentions.length, at);
    for (const user of message.mentions) at = writeId(out, at, user);
  }
  return out;
}

/** The window held in `blob`; throws if it is not a complete window in a known format. */
export function decodeWindow(blob: Buffer): WindowMessage[] {
  if (blob.length < HEADER_BYTES || blob.readUInt8(0) !== FORMAT) {
    throw new RangeError(`channel window blob: unknown format ${blob.length === 0 ? '(empty)' : blob.readUInt8(0)}`);
  }
  const count = blob.readUInt32BE(1);
  const window: WindowMessage[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + MESSAGE_BYTES > blob.length) throw new RangeError('channel window blob: truncated');
    const id = formatSnowflake(blob.readUInt32BE(at), blob.readUInt32BE(at + 4));
    const mentionsEveryone = (blob.readUInt8(at + 8) & EVERYONE) !== 0;
    const mentionCount = blob.readUInt16BE(at + 9);
    at += MESSAGE_BYTES;
    if (at + MENTION_BYTES * mentionCount > blob.length) throw new RangeError('channel window blob: truncated');
    const mentions: string[] = [];
    for (let k = 0; k < mentionCount; k++, at += MENTION_BYTES) {
      mentions.push(formatSnowflake(blob.readUInt32BE(at), blob.readUInt32BE(at + 4)));
    }
    window.push({ id, mentionsEveryone, mentions });
  }
  if (at !== blob.length) throw new RangeError('channel window blob: trailing bytes');
  return window;
}

function writeId(out: Buffer, at: number, id: string): number {
  if (!parseSnowflake(id, halves, 0)) throw new RangeError(`not a snowflake: ${JSON.stringify(id)}`);
  out.writeUInt32BE(halves[0], at);
  return out.writeUInt32BE(halves[1], at + 4);
}
