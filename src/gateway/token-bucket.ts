// The per-session rate limit: a token bucket holding `limit` tokens that refills `limit`
// per `windowMs`. A burst of `limit` payloads passes, and over any long stretch at most
// about `limit` per window do (docs/protocol.md: GATEWAY_RATE_LIMIT per GATEWAY_RATE_WINDOW_MS).

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;

  constructor(
    private readonly limit: number,
    windowMs: number,
    nowMs: number,
  ) {
    this.tokens = limit;
    this.last = nowMs;
    this.perMs = limit / windowMs;
  }

  /** Takes one token; false when none is left (the payload is over the limit). */
  take(nowMs: number): boolean {
    if (nowMs > this.last) {
      this.tokens = Math.min(this.limit, this.tokens + (nowMs - this.last) * this.perMs);
      this.last = nowMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
