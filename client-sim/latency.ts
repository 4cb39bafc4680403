// Latency recording in microseconds: HDR histograms (3 significant digits) for a whole
// run, and one that is read and reset every second for the per-second series.

import { build, type Histogram } from 'hdr-histogram-js';

/** Longest latency recorded as itself; anything slower is recorded as this (60 s). */
const HIGHEST_TRACKABLE_US = 60_000_000;

export interface LatencySummary {
  count: number;
  p50us: number;
  p90us: number;
  p99us: number;
  p999us: number;
  maxUs: number;
  meanUs: number;
}

export interface SecondSample {
  /** Seconds since the measured load started (1 = the first full second). */
  t: number;
  /** Dispatches received in that second. */
  events: number;
  /** Latencies recorded in that second. */
  count: number;
  p50us: number;
  p99us: number;
  maxUs: number;
  /** The simulator's own longest GC pause and event-loop delay in that second: when these are
   * large, the simulator and not the gateway made that second slow. */
  simulatorGcMaxMs: number;
  /** Kind of that longest pause (perf_hooks.constants.NODE_PERFORMANCE_GC_*: 1 minor, 4 major, 8 incremental marking), 0 without one. */
  simulatorGcMaxKind: number;
  simulatorLoopDelayMaxMs: number;
}

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_TRACKABLE_US, numberOfSignificantValueDigits: 3 });
}

/** Records a latency given in milliseconds (performance.now() differences). */
export function recordMs(histogram: Histogram, ms: number): void {
  histogram.recordValue(Math.min(HIGHEST_TRACKABLE_US, Math.max(1, Math.round(ms * 1000))));
}

export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, p50us: 0, p90us: 0, p99us: 0, p999us: 0, maxUs: 0, meanUs: 0 };
  return {
    count: histogram.totalCount,
    p50us: histogram.getValueAtPercentile(50),
    p90us: histogram.getValueAtPercentile(90),
    p99us: histogram.getValueAtPercentile(99),
    p999us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    meanUs: Math.round(histogram.mean),
  };
}

/** The measured seconds whose p99 exceeds `factor` times the run's median per-second p99. */
export function spikeSecondsOf(series: readonly SecondSample[], factor: number, medianP99us: number): SecondSample[] {
  return series.filter((s) => s.count > 0 && s.p99us > factor * medianP99us);
}

/** Median of the per-second p99s, and how many seconds exceed `factor` times it. */
export function spikeStats(series: readonly SecondSample[], factor: number): { medianP99us: number; maxP99us: number; maxUs: number; spikeSeconds: number } {
  const measured = series.filter((s) => s.count > 0);
  if (measured.length === 0) return { medianP99us: 0, maxP99us: 0, maxUs: 0, spikeSeconds: 0 };
  const p99s = measured.map((s) => s.p99us).sort((a, b) => a - b);
  const mid = p99s.length >> 1;
  const medianP99us = p99s.length % 2 === 1 ? p99s[mid] : Math.round((p99s[mid - 1] + p99s[mid]) / 2);
  return {
    medianP99us,
    maxP99us: p99s[p99s.length - 1],
    maxUs: Math.max(...measured.map((s) => s.maxUs)),
    spikeSeconds: spikeSecondsOf(measured, factor, medianP99us).length,
  };
}
