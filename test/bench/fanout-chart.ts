// p99 (and p50) of message -> member update against the message rate, the gateway beside
// raw uWS pub/sub, with the 5 ms line: vega-lite compiled to vega, rendered to SVG headlessly.

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface FanoutPoint {
  impl: string;
  rate: number;
  p50us: number;
  p99us: number;
}

export async function renderFanoutChart(results: readonly FanoutPoint[], subtitle: string): Promise<string> {
  const values = results.flatMap((r) => [
    { impl: r.impl, rate: r.rate, stat: 'p99', ms: r.p99us / 1000 },
    { impl: r.impl, rate: r.rate, stat: 'p50', ms: r.p50us / 1000 },
  ]);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Message to every member’s update: latency against rate', subtitle, anchor: 'start' },
    width: 520,
    height: 320,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'rate', type: 'quantitative', title: 'messages per second', scale: { type: 'log' }, axis: { values: [...new Set(results.map((r) => r.rate))] } },
          y: { field: 'ms', type: 'quantitative', title: 'milliseconds (log scale)', scale: { type: 'log' } },
          color: { field: 'impl', type: 'nominal', title: null, scale: { domain: ['gateway', 'gateway-no-write-behind', 'uws-pubsub'], range: ['#5a4fcf', '#9aa0a6', '#e8a33d'] }, legend: { orient: 'top' } },
          strokeDash: { field: 'stat', type: 'nominal', title: null, sort: ['p99', 'p50'], legend: { orient: 'top' } },
        },
      },
      {
        data: { values: [{ ms: 5 }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#7f868c' },
        encoding: { y: { field: 'ms', type: 'quantitative' } },
      },
    ],
    config: { font: 'sans-serif', view: { stroke: '#ccc' } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
