// Snowflakes are unsigned 64-bit ids sent as decimal strings. The engine keeps them as
// two uint32 halves (hi, lo) in typed arrays: exact for every 64-bit value, comparable
// without BigInt, and free of per-id heap objects.

const TWO_32 = 4294967296;
const MAX_DIGITS = 20;

/** Discord's epoch (2015-01-01T00:00:00Z): ids stay comparable with Discord-style tooling. */
export const SNOWFLAKE_EPOCH_MS = 1420070400000;

/**
 * Parses a decimal snowflake into `out[at]` (hi) and `out[at + 1]` (lo).
 * Returns false, leaving `out` unspecified, for anything that is not 1 to 20 ASCII digits
 * or is above 2^64 - 1. Leading zeros are accepted; formatting makes ids canonical.
 */
export function parseSnowflake(text: string, out: Uint32Array, at: number): boolean {
  const n = text.length;
  if (n === 0 || n > MAX_DIGITS) return false;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < n; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return false;
    // lo * 10 + 9 < 2^36 and hi * 10 + carry < 2^36: both exact in a double.
    const wide = lo * 10 + digit;
    const carry = Math.floor(wide / TWO_32);
    lo = wide - carry * TWO_32;
    hi = hi * 10 + carry;
    if (hi >= TWO_32) return false;
  }
  out[at] = hi;
  out[at + 1] = lo;
  return true;
}

/** Canonical decimal form of the 64-bit value hi * 2^32 + lo. */
export function formatSnowflake(hi: number, lo: number): string {
  // Below 2^53 a double holds the value exactly.
  if (hi < 0x200000) return String(hi * TWO_32 + lo);
  // Otherwise split at 10^6, with 2^32 = 4294 * 10^6 + 967296: every product and sum
  // below stays under 2^53, so each is exact.
  const low = hi * 967296 + lo;
  const carry = Math.floor(low / 1e6);
  const high = hi * 4294 + carry;
  return String(high) + String(low - carry * 1e6).padStart(6, '0');
}

/**
 * formatSnowflake's digits as ASCII bytes into `out` from `at`, with no string built (frames
 * written per member); returns the index after the last digit.
 */
export function writeSnowflakeDigits(hi: number, lo: number, out: Uint8Array, at: number): number {
  if (hi < 0x200000) return writeDecimalDigits(hi * TWO_32 + lo, 1, out, at);
  // The same split at 10^6 as formatSnowflake.
  const low = hi * 967296 + lo;
  const carry = Math.floor(low / 1e6);
  return writeDecimalDigits(low - carry * 1e6, 6, out, writeDecimalDigits(hi * 4294 + carry, 1, out, at));
}

/** A non-negative safe integer's digits as ASCII bytes, zero-padded to at least `width`; returns the index after them. */
export function writeDecimalDigits(value: number, width: number, out: Uint8Array, at: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  if (digits < width) digits = width;
  for (let i = at + digits - 1, rest = value; i >= at; i--, rest = Math.floor(rest / 10)) out[i] = 0x30 + (rest % 10);
  return at + digits;
}

/** -1, 0 or 1 as (aHi, aLo) is below, equal to or above (bHi, bLo). */
export function compareSnowflakes(aHi: number, aLo: number, bHi: number, bLo: number): number {
  if (aHi !== bHi) return aHi < bHi ? -1 : 1;
  if (aLo !== bLo) return aLo < bLo ? -1 : 1;
  return 0;
}

/**
 * Time-ordered unique ids: 42 bits of milliseconds since the epoch, 10 bits of worker id,
 * 12 bits of sequence. Time is passed in (the engine owns no clock), and ids never go
 * backwards even if the clock does: a stalled or rewound clock borrows from the sequence.
 */
export class SnowflakeGenerator {
  /** The last id handed out, as halves. */
  hi = 0;
  lo = 0;
  private lastMs = -1;
  private sequence = 0;

  constructor(private readonly workerId: number) {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > 1023) {
      throw new RangeError(`worker id must be 0..1023, got ${workerId}`);
    }
  }

  /** Advances to the next id (readable in `hi`/`lo`) that is newer than both `now` allows and (floorHi, floorLo). */
  next(nowMs: number, floorHi = 0, floorLo = 0): void {
    let ms = Math.max(0, Math.floor(nowMs) - SNOWFLAKE_EPOCH_MS);
    // Never go below the newest id already seen (a restart on older clocks, or a rewound clock).
    const floorMs = floorHi * 1024 + Math.floor(floorLo / 4194304);
    if (floorMs > ms) ms = floorMs;
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.sequence = 0;
    } else if (++this.sequence > 4095) {
      this.lastMs += 1;
      this.sequence = 0;
    }
    this.hi = Math.floor(this.lastMs / 1024);
    this.lo = (((this.lastMs % 1024) << 22) | (this.workerId << 12) | this.sequence) >>> 0;
    if (compareSnowflakes(this.hi, this.lo, floorHi, floorLo) <= 0) {
      // Same millisecond as the floor id from another worker with a higher sequence: step past it.
      this.lastMs += 1;
      this.sequence = 0;
      this.hi = Math.floor(this.lastMs / 1024);
      this.lo = (((this.lastMs % 1024) << 22) | (this.workerId << 12)) >>> 0;
    }
  }
}
