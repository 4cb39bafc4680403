import { describe, expect, it } from 'vitest';
import { compareIds, DropSchedule, SessionDelivery } from '../../client-sim/delivery.js';
import { SeededRandom } from '../../client-sim/random.js';

// client-sim's accounting across dropped sockets: a dispatch delivered twice is a duplicate
// and is not credited again, a replay through RESUME is neither, and drops come at the rate
// asked for.

describe('compareIds', () => {
  it('orders decimal snowflakes by value, across lengths and above 2^53', () => {
    expect(compareIds('9', '10')).toBe(-1);
    expect(compareIds('1152921504606846977', '1152921504606846976')).toBe(1);
    expect(compareIds('18446744073709551615', '18446744073709551615')).toBe(0);
    expect(compareIds('999999999999999999', '1000000000000000000')).toBe(-1);
  });
});

describe('SessionDelivery', () => {
  it('takes a replay after a resume as the next dispatches, without a gap or a duplicate', () => {
    const delivery = new SessionDelivery(1); // READY was s = 1
    const checks = [2, 3].map((s) => delivery.sequence('READ_STATE_UPDATE', s));
    // The socket drops after s = 3; the RESUME replays 4 and 5, then RESUMED is 6.
    checks.push(delivery.sequence('READ_STATE_UPDATE', 4), delivery.sequence('READ_STATE_UPDATE', 5), delivery.sequence('RESUMED', 6));
    expect(checks.every((check) => !check.duplicate && check.skipped === 0)).toBe(true);
  });

  it('calls a dispatch received again a duplicate, and counts the sequence numbers skipped', () => {
    const delivery = new SessionDelivery(3);
    expect(delivery.sequence('READ_STATE_UPDATE', 3)).toEqual({ duplicate: true, skipped: 0 });
    expect(delivery.sequence('READ_STATE_UPDATE', 2)).toEqual({ duplicate: true, skipped: 0 });
    expect(delivery.sequence('READ_STATE_UPDATE', 6)).toEqual({ duplicate: false, skipped: 2 });
    expect(delivery.sequence('READ_STATE_UPDATE', 6)).toEqual({ duplicate: true, skipped: 0 });
  });

  it('starts the numbering again at a fresh READY (after INVALID_SESSION)', () => {
    const delivery = new SessionDelivery(40);
    expect(delivery.sequence('READY', 1)).toEqual({ duplicate: false, skipped: 0 });
    expect(delivery.sequence('READ_STATE_UPDATE', 2)).toEqual({ duplicate: false, skipped: 0 });
  });

  it('credits a message once: a newer one is new, the same one (an ack) is not, an older one is a repeat', () => {
    const delivery = new SessionDelivery();
    expect(delivery.message(0, '1000000000000000010')).toBe('new');
    expect(delivery.message(0, '1000000000000000010')).toBe('same');
    expect(delivery.message(0, '1000000000000000011')).toBe('new');
    expect(delivery.message(0, '1000000000000000010')).toBe('older');
    // Channels are apart.
    expect(delivery.message(1, '1000000000000000010')).toBe('new');
    expect(delivery.newestIn(0)).toBe('1000000000000000011');
  });

  it('after a fresh READY, credits only messages newer than what READY showed', () => {
    const delivery = new SessionDelivery();
    delivery.message(0, '1000000000000000010');
    // Messages 11 and 12 were posted while the session was lost; READY shows 12 as the newest.
    delivery.restart([[0, '1000000000000000012']]);
    expect(delivery.message(0, '1000000000000000012')).toBe('same');
    expect(delivery.message(0, '1000000000000000013')).toBe('new');
    // A READY never moves a channel back.
    delivery.restart([[0, '1000000000000000011']]);
    expect(delivery.newestIn(0)).toBe('1000000000000000013');
  });
});

describe('DropSchedule', () => {
  /** Runs the schedule for `seconds` over `population` sessions, `connected(i)` telling which are up; drops per session. */
  function simulate(probability: number, population: number, seconds: number, connected: (i: number) => boolean = () => true) {
    const schedule = new DropSchedule(new SeededRandom(7), probability, population);
    const dropsAt: number[][] = Array.from({ length: population }, () => []);
    for (let at = schedule.gapMs(); at < seconds * 1000; at += schedule.gapMs()) {
      const i = schedule.pick();
      if (connected(i)) dropsAt[i].push(at);
    }
    return dropsAt;
  }

  it('drops a connected socket in a given second with the probability asked for', () => {
    const p = 0.02;
    const [times] = simulate(p, 1, 200_000);
    const secondsWithADrop = new Set(times.map((at) => Math.floor(at / 1000))).size;
    // 4,000 expected; the binomial's standard deviation is 63.
    expect(secondsWithADrop / 200_000).toBeCloseTo(p, 2);
    expect(Math.abs(secondsWithADrop - 4000)).toBeLessThan(250);
  });

  it('keeps the rate per connected socket whatever share of the sessions is connected', () => {
    const population = 1000;
    const dropsAt = simulate(0.01, population, 2000, (i) => i % 4 === 0);
    const perConnected = dropsAt.filter((_, i) => i % 4 === 0).reduce((n, times) => n + times.length, 0) / (population / 4) / 2000;
    expect(perConnected).toBeCloseTo(-Math.log(1 - 0.01), 3);
    expect(dropsAt.filter((_, i) => i % 4 !== 0).every((times) => times.length === 0)).toBe(true);
  });

  it('refuses a probability outside (0, 1)', () => {
    expect(() => new DropSchedule(new SeededRandom(1), 0, 10)).toThrow(RangeError);
    expect(() => new DropSchedule(new SeededRandom(1), 1, 10)).toThrow(RangeError);
  });
});
