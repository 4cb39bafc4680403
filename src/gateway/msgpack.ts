// Standard MessagePack (docs/protocol.md "Connection"), read and written with msgpackr.
//
// Client frames: msgpackr cannot be told to refuse extensions. It returns a C1Type for
// 0xc1 and a Date for a timestamp, which a check of the decoded value would catch, but it
// also decodes its record-definition (0x72) and string-bundle (0x62) extensions into plain
// objects and strings, and replaces invalid UTF-8 with U+FFFD, both invisible afterwards.
// So checkStandard reads the frame's type bytes and lengths first, and msgpackr only
// decodes what holds nothing but standard data.

import { isUtf8 } from 'node:buffer';
import { Packr, RESET_BUFFER_MODE, Unpackr } from 'msgpackr';

class MessagePackError extends Error {}

/**
 * Maximum nesting depth accepted. Deeper input is refused before msgpackr recurses into it:
 * a 4096-byte frame could nest 4096 levels. No protocol payload nests more than 3 levels.
 */
export const MAX_MESSAGEPACK_DEPTH = 512;

// Maps become plain objects (msgpackr renames a "__proto__" key to "__proto_", so no key
// can set a prototype); integers above 2^53 are rounded, which keeps them out of every
// safe-integer check; bin values are views of the frame (the codec keeps none of them).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

/** The one standard MessagePack value in `bytes`; throws on anything else. */
export function decodeMessagePack(bytes: Uint8Array): unknown {
  checkStandard(bytes);
  return unpackr.unpack(bytes);
}

/**
 * Throws unless `bytes` hold exactly one value made of nil, bool, int, float, str (valid
 * UTF-8), bin, array and map, nested at most MAX_MESSAGEPACK_DEPTH deep. Reads only type
 * bytes and lengths, without recursion, in at most two steps per byte.
 */
function checkStandard(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let at = 0;
  // Values still to read in each open array or map; the first entry is the top-level value.
  const pending = [1];
  while (pending.length > 0) {
    const top = pending.length - 1;
    if (pending[top] === 0) {
      pending.pop();
      continue;
    }
    pending[top]--;
    if (at >= end) throw new MessagePackError('truncated input');
    const type = bytes[at++];
    let width = 0; // bytes of the length field
    let size = 0; // data bytes after the type byte and length
    let items = 0; // values of an array or map
    let text = false;
    if (type <= 0x7f || type >= 0xe0) {
      // positive or negative fixint
    } else if (type <= 0x8f) items = (type & 0x0f) * 2;
    else if (type <= 0x9f) items = type & 0x0f;
    else if (type <= 0xbf) {
      size = type & 0x1f;
      text = true;
    } else {
      switch (type) {
        case 0xc0: // nil, false, true
        case 0xc2:
        case 0xc3:
          break;
        case 0xcc: // uint8, int8
        case 0xd0:
          size = 1;
          break;
        case 0xcd: // uint16, int16
        case 0xd1:
          size = 2;
          break;
        case 0xca: // float32, uint32, int32
        case 0xce:
        case 0xd2:
          size = 4;
          break;
        case 0xcb: // float64, uint64, int64
        case 0xcf:
        case 0xd3:
          size = 8;
          break;
        case 0xc4: // bin 8, 16, 32
        case 0xc5:
        case 0xc6:
          width = 1 << (type - 0xc4);
          size = lengthAt(view, at, width);
          break;
        case 0xd9: // str 8, 16, 32
        case 0xda:
        case 0xdb:
          width = 1 << (type - 0xd9);
          size = lengthAt(view, at, width);
          text = true;
          break;
        case 0xdc: // array 16, 32
        case 0xdd:
          width = 2 << (type - 0xdc);
          items = lengthAt(view, at, width);
          break;
        case 0xde: // map 16, 32
        case 0xdf:
          width = 2 << (type - 0xde);
          items = lengthAt(view, at, width) * 2;
          break;
        default:
          // 0xc1 (never used) and every extension type (0xc7-0xc9, 0xd4-0xd8).
          throw new MessagePackError(`type byte 0x${type.toString(16)} is not standard MessagePack data`);
      }
    }
    at += width;
    if (size > end - at) throw new MessagePackError('truncated input');
    if (text) {
      // ASCII (ids, field names) needs no further check.
      let high = 0;
      for (let i = at; i < at + size; i++) high |= bytes[i];
      if (high >= 0x80 && !isUtf8(bytes.subarray(at, at + size))) throw new MessagePackError('string is not valid UTF-8');
    }
    at += size;
    if (items > 0) {
      if (pending.length > MAX_MESSAGEPACK_DEPTH) throw new MessagePackError('nested too deeply');
      pending.push(items);
    }
  }
  if (at !== end) throw new MessagePackError('trailing bytes after the value');
}

/** The big-endian length field of `width` bytes (1, 2 or 4) at `at`. */
function lengthAt(view: DataView, at: number, width: number): number {
  if (width > view.byteLength - at) throw new MessagePackError('truncated input');
  return width === 1 ? view.getUint8(at) : width === 2 ? view.getUint16(at) : view.getUint32(at);
}

const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * A JSON-like value as standard MessagePack, in msgpackr's reused buffer: valid until the
 * next pack (by anyone in the process), so send or copy it at once.
 */
export function encodeMessagePack(value: unknown): Uint8Array {
  return packr.pack(wireValue(value), RESET_BUFFER_MODE);
}

/**
 * What msgpackr should write for `value`: msgpackr writes an integer beyond 32 bits as a
 * float64 but a bigint as an int64/uint64, and an undefined member as an extension
 * (skipped here, as JSON.stringify does).
 */
function wireValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(wireValue);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const member = (value as Record<string, unknown>)[key];
    if (member !== undefined) out[key] = wireValue(member);
  }
  return out;
}
