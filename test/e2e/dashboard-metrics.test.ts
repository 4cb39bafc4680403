// The Grafana dashboard (infra/grafana/) and the example alert rules (infra/prometheus/)
// query only metrics the gateway exports: every metric name in their PromQL is a family
// in the running gateway's /metrics (a histogram's _bucket/_sum/_count series count as
// their family). A renamed metric would otherwise leave an empty panel or a silent alert.
//
// The PromQL is read with a few regexes, not a parser: strings, label matchers, range
// selectors and grouping clauses are cut out, then every identifier not followed by "(" and
// not a PromQL keyword is a metric name. The alert file is ours and keeps each expr on one
// line, so a regex over `expr:` lines reads it without a YAML dependency.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { connectUser, type GatewayProcess, randomSnowflake, startGateway } from '../support/gateway-harness.js';

const ROOT = new URL('../../', import.meta.url);
const DASHBOARD = 'infra/grafana/readstate-gateway-dashboard.json';
const ALERTS = 'infra/prometheus/alerts.yml';

/** Series Prometheus writes itself for every scrape target, not the gateway. */
const PROMETHEUS_SERIES = new Set(['up']);

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan']);
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/** The metric names a PromQL expression selects. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:]|\s*\()/g)) {
    if (!KEYWORDS.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return [...names];
}

/** Every `expr` in the dashboard (panel targets) and its variables' label_values() queries, with where it was found. */
function dashboardExprs(): Array<{ where: string; expr: string }> {
  const found: Array<{ where: string; expr: string }> = [];
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((child, i) => walk(child, `${where}[${i}]`));
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    const label = typeof record.title === 'string' ? `${where} "${record.title}"` : typeof record.name === 'string' ? `${where} $${record.name}` : where;
    for (const [key, value] of Object.entries(record)) {
      if (key === 'expr' && typeof value === 'string') found.push({ where: label, expr: value });
      // label_values(metric, label): the metric is the first argument.
      else if (key === 'definition' && typeof value === 'string') {
        const metric = /^label_values\(\s*([^,)]+)\s*,/.exec(value)?.[1];
        if (metric !== undefined) found.push({ where: label, expr: metric });
      } else walk(value, key === 'panels' || key === 'targets' || key === 'list' ? label : `${label}.${key}`);
    }
  };
  walk(JSON.parse(readFileSync(new URL(DASHBOARD, ROOT), 'utf8')), 'dashboard');
  return found;
}

function alertExprs(): Array<{ where: string; expr: string }> {
  const text = readFileSync(new URL(ALERTS, ROOT), 'utf8');
  const found: Array<{ where: string; expr: string }> = [];
  let alert = '(no alert)';
  for (const line of text.split('\n')) {
    const name = /^\s*-\s*alert:\s*(\S+)/.exec(line)?.[1];
    if (name !== undefined) alert = name;
    const expr = /^\s*expr:\s*(.*)$/.exec(line)?.[1];
    if (expr === undefined) continue;
    if (/^[|>]/.test(expr.trim()) || expr.trim() === '') throw new Error(`${ALERTS}: keep the expr of ${alert} on one line`);
    found.push({ where: `alert ${alert}`, expr: expr.trim().replace(/^(['"])(.*)\1$/, '$2') });
  }
  return found;
}

/** Metric families in Prometheus text format, by name, with their type. */
function families(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1], match[2]);
  return types;
}

/** The family a queried series name belongs to, or undefined. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const type = types.get(base);
    if (type === 'histogram' || type === 'summary') return base;
  }
  return undefined;
}

describe('PromQL name extraction', () => {
  it('finds metric names and nothing else', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, kind) (rate(nodejs_gc_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      'nodejs_gc_duration_seconds_bucket',
    ]);
    expect(metricNames('sum(rate(a_total[5m])) / (sum(rate(a_total[5m])) + sum(rate(b_total{job="x", op!="y"}[5m]))) > 0.5 and on (instance) c == 1e3').sort()).toEqual([
      'a_total',
      'b_total',
      'c',
    ]);
    expect(metricNames('up{job="readstate-gateway"} == 0')).toEqual(['up']);
  });
});

describe('dashboard and alert rules', () => {
  const keyspace = uniqueKeyspace('e2e_dashboard');
  let gateway: GatewayProcess;

  beforeAll(async () => {
    gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace });
  });

  afterAll(async () => {
    expect(await gateway?.stop()).toBe(0);
    await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
  });

  it('query only metrics the gateway exports', async () => {
    // A session and a request, so that labelled series have samples too (not needed for the
    // check, which reads the # TYPE lines, but closer to what a real scrape returns).
    const user = randomSnowflake();
    const client = await connectUser(gateway, user);
    const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
    await client.close();
    const types = families(text);
    expect(types.size).toBeGreaterThan(20);

    const dashboard = dashboardExprs();
    const alerts = alertExprs();
    // Guards against an extraction that silently finds nothing.
    expect(dashboard.length).toBeGreaterThanOrEqual(20);
    expect(alerts.length).toBeGreaterThanOrEqual(5);

    const missing: string[] = [];
    const queried = new Set<string>();
    for (const { where, expr } of [...dashboard, ...alerts]) {
      const names = metricNames(expr);
      if (names.length === 0) missing.push(`${where}: no metric in ${expr}`);
      for (const name of names) {
        if (PROMETHEUS_SERIES.has(name)) continue;
        const family = familyOf(name, types);
        if (family === undefined) missing.push(`${where}: ${name}`);
        else queried.add(family);
      }
    }
    expect(missing).toEqual([]);
    // What the dashboard is for (the list): each of these is on it.
    for (const family of [
      'gateway_connections',
      'gateway_request_to_dispatch_seconds',
      'nodejs_gc_duration_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'readstate_dirty',
      'readstate_write_lag_seconds',
      'readstate_store_write_errors_total',
      'readstate_cache_hit_ratio',
      'readstate_evictions_total',
      'gateway_ready',
    ]) {
      expect(queried, family).toContain(family);
    }
  });
});
