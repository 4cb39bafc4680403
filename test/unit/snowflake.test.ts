import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareSnowflakes, formatSnowflake, parseSnowflake, SNOWFLAKE_EPOCH_MS, SnowflakeGenerator, writeSnowflakeDigits } from '../../src/engine/snowflake.js';

const U64_MAX = (1n << 64n) - 1n;
const halves = new Uint32Array(2);

function parse(text: string): bigint | undefined {
  if (!parseSnowflake(text, halves, 0)) return undefined;
  return (BigInt(halves[0]) << 32n) | BigInt(halves[1]);
}

function format(value: bigint): string {
  return formatSnowflake(Number(value >> 32n), Number(value & 0xffffffffn));
}

/** The digits writeSnowflakeDigits writes, after a byte it must leave alone. */
function written(value: bigint): string {
  const out = new Uint8Array(24).fill(0x78);
  const end = writeSnowflakeDigits(Number(value >> 32n), Number(value & 0xffffffffn), out, 1);
  expect(out[0]).toBe(0x78);
  expect(out[end]).toBe(0x78);
  return new TextDecoder().decode(out.subarray(1, end));
}

describe('snowflake parse and format', () => {
  it('round-trips every 64-bit value exactly, above 2^53 included', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (value) => {
        expect(parse(value.toString())).toBe(value);
        expect(format(value)).toBe(value.toString());
        expect(written(value)).toBe(value.toString());
      }),
      { numRuns: 20_000 },
    );
  });

  it('handles the edges', () => {
    for (const value of [0n, 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 63n, U64_MAX, 9999n, 10000n, 10n ** 19n, (0x200000n << 32n) + 999999n, 0x200000n << 32n]) {
      expect(parse(value.toString())).toBe(value);
      expect(format(value)).toBe(value.toString());
      expect(written(value)).toBe(value.toString());
    }
  });

  it('accepts leading zeros and formats canonically', () => {
    expect(parse('000123')).toBe(123n);
    expect(format(parse('00000000000000000001')!)).toBe('1');
  });

  it('rejects what docs/protocol.md calls malformed', () => {
    for (const text of ['', '-1', '+1', '1.0', '1e3', ' 1', '1 ', 'abc', '0x10', '１', '18446744073709551616', '99999999999999999999', '000000000000000000001']) {
      expect(parse(text), text).toBeUndefined();
    }
  });

  it('compares like the numbers', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), fc.bigInt({ min: 0n, max: U64_MAX }), (a, b) => {
        const got = compareSnowflakes(Number(a >> 32n), Number(a & 0xffffffffn), Number(b >> 32n), Number(b & 0xffffffffn));
        expect(got).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });
});

describe('SnowflakeGenerator', () => {
  const idOf = (g: SnowflakeGenerator) => (BigInt(g.hi) << 32n) | BigInt(g.lo);

  it('encodes time, worker and sequence like Discord', () => {
    const g = new SnowflakeGenerator(5);
    const now = SNOWFLAKE_EPOCH_MS + 123_456_789;
    g.next(now);
    const id = idOf(g);
    expect(id >> 22n).toBe(123_456_789n);
    expect((id >> 12n) & 1023n).toBe(5n);
    expect(id & 4095n).toBe(0n);
  });

  it('never goes backwards, whatever the clock does, and stays above the floor id', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -5000, max: 5000 }), fc.boolean()), { maxLength: 300, size: 'max' }), (steps) => {
        const g = new SnowflakeGenerator(1);
        let now = Date.now();
        let last = -1n;
        let floor = 0n;
        for (const [dt, useFloor] of steps) {
          now += dt;
          if (useFloor) {
            floor = last + 1n + BigInt(Math.abs(dt)) * 4_194_304n;
            g.next(now, Number(floor >> 32n), Number(floor & 0xffffffffn));
            expect(idOf(g) > floor).toBe(true);
          } else {
            g.next(now);
          }
          expect(idOf(g) > last).toBe(true);
          last = idOf(g);
        }
      }),
    );
  });

  it('hands out 4096 ids per millisecond, then borrows the next millisecond', () => {
    const g = new SnowflakeGenerator(0);
    const now = SNOWFLAKE_EPOCH_MS + 1000;
    const seen = new Set<bigint>();
    for (let i = 0; i < 5000; i++) {
      g.next(now);
      seen.add(idOf(g));
    }
    expect(seen.size).toBe(5000);
  });

  it('refuses worker ids outside 10 bits', () => {
    expect(() => new SnowflakeGenerator(1024)).toThrow(RangeError);
    expect(() => new SnowflakeGenerator(-1)).toThrow(RangeError);
  });
});
