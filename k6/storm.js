// Connection storm: new sessions at a constant arrival rate, each identifying as one of
// the fixture's users (npm run k6 -- storm --groups G --members M: G channels of M users,
// so every READY carries read states loaded from Cassandra).
//
// identify_latency: HELLO read (IDENTIFY goes out in that callback) -> READY read, between
// Go-side frame timestamps (lib/gateway.js), so sub-millisecond. It covers the JWT check and
// loading the user's read states. k6's own ws_connecting times the WebSocket handshake.
//
// Env: RATE (new sessions per second, default 100), DURATION (30s), HOLD_MS (how long each
// session stays open after READY, 1000), P99_MS / P999_MS (thresholds on identify_latency,
// default 50 / 200), MAX_VUS (400).

import exec from 'k6/execution';
import { Rate, Trend } from 'k6/metrics';
import { clearTimeout, setTimeout } from 'k6/timers';
import { groups, openSession, summaryOutputs } from './lib/gateway.js';

const HOLD_MS = Number(__ENV.HOLD_MS || 1000);
const READY_TIMEOUT_MS = 10_000;
const users = [];
for (const group of groups) for (const member of group.members) users.push(member.token);

const identifyLatency = new Trend('identify_latency', true);
const sessionsReady = new Rate('sessions_ready');

export const options = {
  scenarios: {
    storm: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 100),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Math.min(100, Number(__ENV.MAX_VUS || 400)),
      maxVUs: Number(__ENV.MAX_VUS || 400),
    },
  },
  thresholds: {
    identify_latency: [`p(99)<${__ENV.P99_MS || 50}`, `p(99.9)<${__ENV.P999_MS || 200}`],
    sessions_ready: ['rate>0.999'],
    dropped_iterations: ['count==0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max', 'count'],
};

export default function () {
  const token = users[exec.scenario.iterationInTest % users.length];
  let helloAt = 0;
  let done = false;
  const session = openSession(token, {
    hello(d, event) {
      helloAt = event.timestamp;
    },
    ready(d, event) {
      if (done) return;
      done = true;
      clearTimeout(timeout);
      identifyLatency.add(event.timestamp - helloAt);
      sessionsReady.add(1);
      setTimeout(() => session.close(), HOLD_MS);
    },
    close() {
      if (done) return;
      done = true;
      clearTimeout(timeout);
      sessionsReady.add(0);
    },
  });
  const timeout = setTimeout(() => {
    if (done) return;
    done = true;
    sessionsReady.add(0);
    session.close();
  }, READY_TIMEOUT_MS);
}

export function handleSummary(data) {
  return summaryOutputs(data, ['identify_latency', 'sessions_ready', 'ws_connecting', 'iterations', 'dropped_iterations']);
}
