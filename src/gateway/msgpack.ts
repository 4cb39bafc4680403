// Standard MessagePack, strictly: a decoder for client frames and a writer for server frames.
//
// Why not msgpackr for client frames: it turns the unused byte 0xc1 into a C1Type object,
// the timestamp extension into a Date, knows several private extensions, and may reuse
// structures; the protocol wants every extension rejected and the payload to be plain
// data. This decoder knows exactly the standard types (nil, bool, int, float, str, bin,
// array, map) and throws on anything else, on truncation and on trailing bytes.
// The writer emits the smallest standard encoding of each value and lets a frame be
// assembled from parts encoded once (see codec.ts).

export class MessagePackError extends Error {}

/**
 * Maximum nesting depth accepted. Deeper input is refused rather than recursed into: a
 * 4096-byte frame could nest 4096 levels, enough to exhaust the stack. No protocol payload
 * nests more than 3 levels.
 */
export const MAX_MESSAGEPACK_DEPTH = 512;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A map decoded into a prototype-less object, so a "__proto__" key is just a key. */
export type DecodedMap = Record<string, unknown>;

export function decodeMessagePack(bytes: Uint8Array): unknown {
  const reader = new Reader(bytes);
  const value = reader.value(0);
  if (reader.at !== bytes.length) throw new MessagePackError('trailing bytes after the value');
  return value;
}

class Reader {
  at = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  value(depth: number): unknown {
    if (depth > MAX_MESSAGEPACK_DEPTH) throw new MessagePackError('nested too deeply');
    const type = this.u8();
    if (type <= 0x7f) return type;
    if (type >= 0xe0) return type - 0x100;
    if (type <= 0x8f) return this.map(type & 0x0f, depth);
    if (type <= 0x9f) return this.array(type & 0x0f, depth);
    if (type <= 0xbf) return this.str(type & 0x1f);
    switch (type) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u8());
      case 0xc5:
        return this.bin(this.u16());
      case 0xc6:
        return this.bin(this.u32());
      case 0xca:
        return this.view.getFloat32(this.take(4));
      case 0xcb:
        return this.view.getFloat64(this.take(8));
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf: {
        // Above 2^53 the number is rounded, which keeps it out of every safe-integer check.
        const hi = this.u32();
        return hi * 4294967296 + this.u32();
      }
      case 0xd0:
        return this.view.getInt8(this.take(1));
      case 0xd1:
        return this.view.getInt16(this.take(2));
      case 0xd2:
        return this.view.getInt32(this.take(4));
      case 0xd3: {
        const at = this.take(8);
        return this.view.getInt32(at) * 4294967296 + this.view.getUint32(at + 4);
      }
      case 0xd9:
        return this.str(this.u8());
      case 0xda:
        return this.str(this.u16());
      case 0xdb:
        return this.str(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      default:
        // 0xc1 (never used) and every extension type (0xc7-0xc9, 0xd4-0xd8).
        throw new MessagePackError(`type byte 0x${type.toString(16)} is not standard MessagePack data`);
    }
  }

  private array(count: number, depth: number): unknown[] {
    // Each element takes at least one byte: refuse counts the input cannot hold before allocating.
    if (count > this.bytes.length - this.at) throw new MessagePackError('truncated array');
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(count: number, depth: number): DecodedMap {
    if (count * 2 > this.bytes.length - this.at) throw new MessagePackError('truncated map');
    const out: DecodedMap = Object.create(null) as DecodedMap;
    for (let i = 0; i < count; i++) {
      const key = this.value(depth + 1);
      // Keys become property names as in JavaScript; keys that have no such name are refused.
      if (typeof key !== 'string' && typeof key !== 'number') throw new MessagePackError('map key is not a string or number');
      out[String(key)] = this.value(depth + 1);
    }
    return out;
  }

  private str(length: number): string {
    const start = this.take(length);
    const bytes = this.bytes;
    // Short ASCII strings (ids, field names) skip the decoder.
    if (length <= 32) {
      let ascii = '';
      for (let i = start; i < start + length; i++) {
        const c = bytes[i];
        if (c >= 0x80) return this.utf8(start, length);
        ascii += String.fromCharCode(c);
      }
      return ascii;
    }
    return this.utf8(start, length);
  }

  private utf8(start: number, length: number): string {
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new MessagePackError('string is not valid UTF-8');
    }
  }

  private bin(length: number): Uint8Array {
    const start = this.take(length);
    return this.bytes.slice(start, start + length);
  }

  private u8(): number {
    return this.bytes[this.take(1)];
  }

  private u16(): number {
    return this.view.getUint16(this.take(2));
  }

  private u32(): number {
    return this.view.getUint32(this.take(4));
  }

  /** Advances past `n` bytes and returns where they start. */
  private take(n: number): number {
    const at = this.at;
    if (n > this.bytes.length - at) throw new MessagePackError('truncated input');
    this.at = at + n;
    return at;
  }
}

/** Appends standard MessagePack to a growable buffer, smallest encoding first. */
export class MessagePackWriter {
  bytes: Buffer;
  length = 0;

  constructor(initialSize = 1024) {
    this.bytes = Buffer.allocUnsafe(initialSize);
  }

  reset(): this {
    this.length = 0;
    return this;
  }

  /** A copy of what was written. */
  toBytes(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.bytes, 0, this.length);
  }

  /** What was written, without a copy: valid until the writer is next used. */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  nil(): this {
    this.room(1);
    this.bytes[this.length++] = 0xc0;
    return this;
  }

  bool(value: boolean): this {
    this.room(1);
    this.bytes[this.length++] = value ? 0xc3 : 0xc2;
    return this;
  }

  mapHeader(count: number): this {
    return this.header(count, 0x80, 0xde, 0xdf);
  }

  arrayHeader(count: number): this {
    return this.header(count, 0x90, 0xdc, 0xdd);
  }

  number(value: number): this {
    if (!Number.isInteger(value) || !Number.isSafeInteger(value)) {
      this.room(9);
      this.bytes[this.length] = 0xcb;
      this.bytes.writeDoubleBE(value, this.length + 1);
      this.length += 9;
      return this;
    }
    this.room(9);
    const b = this.bytes;
    let at = this.length;
    if (value >= 0) {
      if (value <= 0x7f) b[at++] = value;
      else if (value <= 0xff) {
        b[at++] = 0xcc;
        b[at++] = value;
      } else if (value <= 0xffff) {
        b[at++] = 0xcd;
        b.writeUInt16BE(value, at);
        at += 2;
      } else if (value <= 0xffffffff) {
        b[at++] = 0xce;
        b.writeUInt32BE(value, at);
        at += 4;
      } else {
        b[at++] = 0xcf;
        b.writeUInt32BE(Math.floor(value / 4294967296), at);
        b.writeUInt32BE(value % 4294967296, at + 4);
        at += 8;
      }
    } else if (value >= -32) {
      b[at++] = value & 0xff;
    } else if (value >= -0x80) {
      b[at++] = 0xd0;
      b.writeInt8(value, at);
      at += 1;
    } else if (value >= -0x8000) {
      b[at++] = 0xd1;
      b.writeInt16BE(value, at);
      at += 2;
    } else if (value >= -0x80000000) {
      b[at++] = 0xd2;
      b.writeInt32BE(value, at);
      at += 4;
    } else {
      b[at++] = 0xd3;
      b.writeBigInt64BE(BigInt(value), at);
      at += 8;
    }
    this.length = at;
    return this;
  }

  string(value: string): this {
    const size = Buffer.byteLength(value, 'utf8');
    this.room(size + 5);
    const b = this.bytes;
    let at = this.length;
    if (size <= 31) b[at++] = 0xa0 | size;
    else if (size <= 0xff) {
      b[at++] = 0xd9;
      b[at++] = size;
    } else if (size <= 0xffff) {
      b[at++] = 0xda;
      b.writeUInt16BE(size, at);
      at += 2;
    } else {
      b[at++] = 0xdb;
      b.writeUInt32BE(size, at);
      at += 4;
    }
    this.length = at + b.write(value, at, size, 'utf8');
    return this;
  }

  /** Appends bytes that already hold encoded MessagePack. */
  raw(bytes: Uint8Array): this {
    this.room(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** Any JSON-like value: null, boolean, number, string, array, plain object (undefined members skipped). */
  value(value: unknown): this {
    if (value === null || value === undefined) return this.nil();
    switch (typeof value) {
      case 'boolean':
        return this.bool(value);
      case 'number':
        return this.number(value);
      case 'string':
        return this.string(value);
      case 'object': {
        if (Array.isArray(value)) {
          this.arrayHeader(value.length);
          for (const item of value) this.value(item);
          return this;
        }
        const entries = Object.entries(value).filter(([, v]) => v !== undefined);
        this.mapHeader(entries.length);
        for (const [key, v] of entries) this.string(key).value(v);
        return this;
      }
      default:
        throw new TypeError(`cannot encode a ${typeof value} as MessagePack`);
    }
  }

  private header(count: number, fix: number, code16: number, code32: number): this {
    this.room(5);
    const b = this.bytes;
    if (count <= 15) b[this.length++] = fix | count;
    else if (count <= 0xffff) {
      b[this.length] = code16;
      b.writeUInt16BE(count, this.length + 1);
      this.length += 3;
    } else {
      b[this.length] = code32;
      b.writeUInt32BE(count, this.length + 1);
      this.length += 5;
    }
    return this;
  }

  private room(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + extra));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
}
