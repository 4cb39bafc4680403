// Draws the per-second p99 and max latency of every gateway of a run on one time axis, the
// way Discord's blog drew Go (purple) against Rust (blue): here lru-cache against the engine,
// the controls in grey. Below, each gateway alone with its longest GC pause of each second
// and, under churn, a lane with the table's misses and evictions per second, so a reader sees
// whether the spikes follow the churn. Vega-lite compiled to vega, rendered to SVG headlessly.

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { SecondSample } from '../../client-sim/latency.js';

/** What the gateway itself saw in one of the simulator's seconds. */
export interface GatewaySecond {
  t: number;
  gcMaxMs: number;
  /** Kind of that longest pause (perf_hooks.constants.NODE_PERFORMANCE_GC_*: 1 minor, 4 major). */
  gcMaxKind: number;
  gcMs: number;
  loopDelayMaxMs: number;
  /** Loads from the store and evictions in that second (0 outside churn mode). */
  misses: number;
  evictions: number;
}

export interface ChartRun {
  /** Column header; a newline breaks it into lines. */
  label: string;
  /** Its name in the overlay's legend, and its colour there. */
  name: string;
  color: string;
  medianP99us: number;
  series: readonly SecondSample[];
  gateway: readonly GatewaySecond[];
}

const LINES = ['max', 'p99', 'longest GC pause in the gateway'];
const COLORS = ['#e8a33d', '#5a4fcf', '#2e9e6a'];
const COLOR = { field: 'line', type: 'nominal', title: null, sort: LINES, scale: { domain: LINES, range: COLORS }, legend: { orient: 'top', labelLimit: 400 } } as const;
/** The dashed line: a second whose p99 is above it counts as a spike. */
const SPIKE_LINE = 'spike';

/** One chart of a vertical concatenation. */
type ConcatLane = Extract<TopLevelSpec, { vconcat: unknown }>['vconcat'][number];

/** The x axis of every lane: the simulator's measured seconds. */
const TIME_AXIS = { field: 't', type: 'quantitative', title: 'seconds of measured load' } as const;
// Symmetric log: the engine's few milliseconds and the seconds-long full collections stay
// readable on one axis (and a second without any GC pause sits at 0).
const LATENCY_AXIS = {
  field: 'ms',
  type: 'quantitative',
  title: 'milliseconds (symmetric log scale)',
  scale: { type: 'symlog', constant: 1 },
  // A mutable array: vega-lite's types take no readonly one.
  axis: { values: [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000] as number[] },
} as const;

const CHURN_LINES = ['misses/s', 'evictions/s'];
const CHURN_COLORS = ['#c2410c', '#0e7490'];

/** Both latency figures of every run on one time axis: p99 to the left, max to the right. */
function overlayOf(runs: readonly ChartRun[]): ConcatLane {
  const points: { name: string; t: number; figure: string; ms: number }[] = [];
  for (const run of runs) {
    for (const sample of run.series) {
      if (sample.count === 0) continue;
      points.push({ name: run.name, t: sample.t, figure: 'p99 per second', ms: sample.p99us / 1000 });
      points.push({ name: run.name, t: sample.t, figure: 'max per second', ms: sample.maxUs / 1000 });
    }
  }
  return {
    data: { values: points },
    facet: { column: { field: 'figure', type: 'nominal', title: null, sort: ['p99 per second', 'max per second'], header: { labelFontSize: 14, labelFontWeight: 'bold' } } },
    spec: {
      width: 640,
      height: 260,
      mark: { type: 'line', strokeWidth: 1.2, interpolate: 'step-after' },
      encoding: {
        x: TIME_AXIS,
        y: LATENCY_AXIS,
        color: { field: 'name', type: 'nominal', title: null, sort: runs.map((run) => run.name), scale: { domain: runs.map((run) => run.name), range: runs.map((run) => run.color) }, legend: { orient: 'top', labelLimit: 400 } },
        // The tables under test drawn over the controls.
        order: { field: 'name', sort: 'descending' },
      },
    },
    resolve: { scale: { y: 'shared' } },
  };
}

export async function renderSpikeChart(runs: readonly ChartRun[], title: string, subtitle: string): Promise<string> {
  const values: { run: string; t: number; line: string; ms: number }[] = [];
  const churn: { run: string; t: number; line: string; perSecond: number }[] = [];
  for (const run of runs) {
    for (const second of run.gateway) {
      churn.push({ run: run.label, t: second.t, line: CHURN_LINES[0], perSecond: second.misses });
      churn.push({ run: run.label, t: second.t, line: CHURN_LINES[1], perSecond: second.evictions });
    }
    for (const sample of run.series) {
      if (sample.count === 0) continue;
      values.push({ run: run.label, t: sample.t, line: LINES[0], ms: sample.maxUs / 1000 });
      values.push({ run: run.label, t: sample.t, line: LINES[1], ms: sample.p99us / 1000 });
      values.push({ run: run.label, t: sample.t, line: SPIKE_LINE, ms: (3 * run.medianP99us) / 1000 });
    }
    for (const second of run.gateway) values.push({ run: run.label, t: second.t, line: LINES[2], ms: second.gcMaxMs });
  }
  const column = { field: 'run', type: 'nominal', title: null, sort: runs.map((r) => r.label) } as const;
  const lanes: ConcatLane[] = [
    overlayOf(runs),
    {
      data: { values },
      facet: { column: { ...column, header: { labelFontSize: 14, labelFontWeight: 'bold', labelExpr: "split(datum.label, '\\n')" } } },
      spec: {
        width: 420,
        height: 300,
        encoding: {
          x: TIME_AXIS,
          y: LATENCY_AXIS,
        },
        layer: [
          {
            transform: [{ filter: `datum.line === '${LINES[0]}' || datum.line === '${LINES[1]}'` }],
            mark: { type: 'line', strokeWidth: 1.2, interpolate: 'step-after' },
            encoding: { color: COLOR },
          },
          {
            // A dot per second that had a GC pause, at the length of its longest one.
            transform: [{ filter: `datum.line === '${LINES[2]}' && datum.ms > 0` }],
            mark: { type: 'point', filled: true, size: 14, opacity: 0.8 },
            encoding: { color: COLOR },
          },
          {
            transform: [{ filter: `datum.line === '${SPIKE_LINE}'` }],
            mark: { type: 'line', strokeWidth: 1, strokeDash: [4, 3], color: '#7f868c' },
          },
        ],
      },
      resolve: { scale: { y: 'shared' } },
    },
  ];
  // The churn lane, aligned under each run's latency (the constant mode has nothing to show there).
  if (churn.some((point) => point.perSecond > 0)) {
    lanes.push({
      data: { values: churn },
      facet: { column: { ...column, header: { labels: false } } },
      spec: {
        width: 420,
        height: 110,
        mark: { type: 'line', strokeWidth: 1, interpolate: 'step-after' },
        encoding: {
          x: TIME_AXIS,
          y: { field: 'perSecond', type: 'quantitative', title: 'per second' },
          color: { field: 'line', type: 'nominal', title: null, sort: CHURN_LINES, scale: { domain: CHURN_LINES, range: CHURN_COLORS }, legend: { orient: 'bottom' } },
          strokeDash: { field: 'line', type: 'nominal', sort: CHURN_LINES, legend: null },
        },
      },
      resolve: { scale: { y: 'shared' } },
    });
  }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle, anchor: 'start' },
    vconcat: lanes,
    resolve: { scale: { color: 'independent' } },
    config: { font: 'sans-serif', view: { stroke: '#ccc' } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
