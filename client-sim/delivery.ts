// What the swarm needs to count updates honestly when sockets drop: per session, which
// dispatches arrived (by sequence number, so a dispatch delivered twice is seen as such) and
// the newest message seen per channel (so a message's update is credited to a session once);
// and when to drop a socket.
//
// Pure logic, no sockets: tested in test/unit/client-sim-delivery.test.ts.

import type { SeededRandom } from './random.js';

/** Orders two snowflakes given as decimal strings without leading zeros (as the gateway writes them). */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How a dispatch's sequence number relates to what the session already had. */
export interface SequenceCheck {
  /** Already received on this session (s at or below the last one): the dispatch came twice. */
  duplicate: boolean;
  /** Sequence numbers skipped before this one: dispatches the session never got. */
  skipped: number;
}

/**
 * One simulated device's view of its gateway session. A session's dispatches are numbered
 * 1, 2, 3, ... without a gap, replays through RESUME included; a fresh READY (after
 * INVALID_SESSION) starts a new session and a new numbering.
 */
export class SessionDelivery {
  private lastSequence: number;
  /** Newest message id seen per channel (index). */
  private readonly newest = new Map<number, string>();

  constructor(lastSequence: number | null = null) {
    this.lastSequence = lastSequence ?? 0;
  }

  /** Checks a dispatch's `s` and takes it as the last one (unless it is a duplicate). */
  sequence(event: string, s: number): SequenceCheck {
    if (event === 'READY') {
      this.lastSequence = s;
      return { duplicate: false, skipped: 0 };
    }
    if (s <= 0) return { duplicate: false, skipped: 0 };
    if (s <= this.lastSequence) return { duplicate: true, skipped: 0 };
    const skipped = s - this.lastSequence - 1;
    this.lastSequence = s;
    return { duplicate: false, skipped };
  }

  /**
   * A READ_STATE_UPDATE showing `messageId` as the channel's newest message:
   * - 'new': the first update of a newer message (credit it to this session);
   * - 'same': the newest message already seen (an ack's update, nothing to credit);
   * - 'older': an older message than one already seen, which only a repeated update can show.
   */
  message(channel: number, messageId: string): 'new' | 'same' | 'older' {
    const seen = this.newest.get(channel);
    const order = seen === undefined ? 1 : compareIds(messageId, seen);
    if (order <= 0) return order === 0 ? 'same' : 'older';
    this.newest.set(channel, messageId);
    return 'new';
  }

  /** Newest message seen in the channel: what a read of it acks. */
  newestIn(channel: number): string | undefined {
    return this.newest.get(channel);
  }

  /**
   * A fresh READY: its read states are where the session starts again. Messages between the
   * last update and this READY are not credited: their updates never arrived.
   */
  restart(newestPerChannel: Iterable<[number, string]>): void {
    for (const [channel, messageId] of newestPerChannel) {
      const seen = this.newest.get(channel);
      if (seen === undefined || compareIds(messageId, seen) > 0) this.newest.set(channel, messageId);
    }
  }
}

/**
 * When to drop a socket, so that each connected socket is dropped with probability
 * `probabilityPerSecond` in any one second, independently: a Poisson process of rate
 * λ = -ln(1 - p) per socket (P(no drop in 1 s) = e^-λ = 1 - p), run over the whole population
 * of sessions at once. Each event picks a session uniformly; the caller drops it only when it
 * is connected, which thins the process to exactly λ per connected socket, whatever number is
 * connected at the moment.
 */
export class DropSchedule {
  readonly hazardPerSecond: number;
  private readonly meanGapMs: number;

  constructor(
    private readonly random: SeededRandom,
    probabilityPerSecond: number,
    private readonly population: number,
  ) {
    if (!(probabilityPerSecond > 0 && probabilityPerSecond < 1)) throw new RangeError('a drop probability per second must be in (0, 1)');
    if (!(population >= 1)) throw new RangeError('no sessions to drop');
    this.hazardPerSecond = -Math.log1p(-probabilityPerSecond);
    this.meanGapMs = 1000 / (this.hazardPerSecond * population);
  }

  /** Time to the next event, in ms. */
  gapMs(): number {
    return this.random.exponential(this.meanGapMs);
  }

  /** The session (index) the event falls on. */
  pick(): number {
    return this.random.below(this.population);
  }
}
