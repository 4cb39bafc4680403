// The key popularity the benchmarks share: a seeded generator, so runs are comparable, and
// Zipf-like ranks, so a few keys are hot and a long tail keeps missing the cache.

/** Deterministic numbers in [0, 1). */
export class Xorshift {
  constructor(private state: number) {}
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }
}

/** Rank in [0, n) by inverting the continuous Zipf CDF (exponent s ≠ 1), scattered over [0, n) so popular ranks are not neighbours. */
export function zipfIndex(random: Xorshift, n: number, s: number): number {
  const a = 1 - s;
  const rank = Math.min(n - 1, Math.floor(((n ** a - 1) * random.next() + 1) ** (1 / a)) - 1);
  return (rank * 2654435761) % n;
}
