// Shared by the k6 scripts: the fixture written by `npm run k6` (client-sim/k6-runner.ts),
// a gateway session on k6/websockets (JSON encoding), and the summary output.
//
// Clocks: k6's Date.now() is whole milliseconds and k6 has no performance.now(). The
// `timestamp` of a k6/websockets event is a float in epoch milliseconds taken in Go when
// the frame was read (nanosecond clock). So the scripts time an interval only between two
// such timestamps: a request is sent inside the callback of a received frame, and that
// frame's timestamp stands for the send time. Each sample thus also includes k6's own
// delay in running the callback: an upper bound of the gateway's latency, never a guess
// below it.

import { SharedArray } from 'k6/data';
import { clearInterval, setInterval } from 'k6/timers';
import { WebSocket } from 'k6/websockets';

if (!__ENV.FIXTURE) throw new Error('FIXTURE is not set: run the scripts through `npm run k6 -- <script>`');

const fixture = JSON.parse(open(__ENV.FIXTURE));

export const gatewayUrl = fixture.gatewayUrl;

/** [{channelId, members: [{userId, token}]}], shared by all VUs instead of one copy each. */
export const groups = new SharedArray('groups', () => fixture.groups);

export const Op = { dispatch: 0, heartbeat: 1, identify: 2, hello: 10, heartbeatAck: 11, error: 12, messageCreate: 20, messageAck: 21 };

/**
 * Opens a session and identifies with `token` as soon as HELLO arrives, then keeps it alive
 * with heartbeats at the interval HELLO gives. Handlers (all optional), each given the k6
 * event as last argument: hello(d), ready(d), dispatch(t, d), heartbeatAck(), error(d), close(code).
 */
export function openSession(token, handlers) {
  const ws = new WebSocket(`${gatewayUrl}${gatewayUrl.includes('?') ? '&' : '?'}encoding=json`);
  let sequence = null;
  let heartbeats = null;
  const session = {
    send(op, d) {
      ws.send(JSON.stringify({ op, d }));
    },
    heartbeat() {
      session.send(Op.heartbeat, sequence);
    },
    close() {
      if (heartbeats !== null) clearInterval(heartbeats);
      heartbeats = null;
      ws.close();
    },
  };
  ws.onmessage = (event) => {
    const payload = JSON.parse(event.data);
    if (typeof payload.s === 'number') sequence = payload.s;
    switch (payload.op) {
      case Op.hello:
        if (handlers.hello) handlers.hello(payload.d, event);
        session.send(Op.identify, { token });
        heartbeats = setInterval(() => session.heartbeat(), payload.d.heartbeat_interval);
        break;
      case Op.dispatch:
        if (payload.t === 'READY') {
          if (handlers.ready) handlers.ready(payload.d, event);
        } else if (handlers.dispatch) handlers.dispatch(payload.t, payload.d, event);
        break;
      case Op.heartbeatAck:
        if (handlers.heartbeatAck) handlers.heartbeatAck(event);
        break;
      case Op.error:
        if (handlers.error) handlers.error(payload.d, event);
        break;
    }
  };
  ws.onclose = (event) => {
    if (heartbeats !== null) clearInterval(heartbeats);
    heartbeats = null;
    if (handlers.close) handlers.close(event.code, event);
  };
  ws.onerror = (event) => {
    if (handlers.error) handlers.error({ code: 'socket', message: String(event.error) }, event);
  };
  return session;
}

/** Milliseconds since the epoch encoded in a snowflake (its top 42 bits; whole ms). */
export function snowflakeMs(id) {
  // A double holds a 64-bit id to within 256; k * 2^22 is exact, so the floor is never off.
  return Math.floor(Number(id) / 4194304) + 1420070400000;
}

/** Seconds in a k6-style duration: "90s", "2m", "1m30s", "1h". */
export function durationSeconds(text) {
  const parts = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (parts === null || text === '') throw new Error(`not a duration: ${text}`);
  return Number(parts[1] || 0) * 3600 + Number(parts[2] || 0) * 60 + Number(parts[3] || 0);
}

/**
 * handleSummary's outputs: the full summary JSON to SUMMARY_FILE, and on stdout the script's
 * own metrics with their thresholds (k6's textSummary lives on a host this machine cannot reach).
 */
export function summaryOutputs(data, metricNames) {
  const lines = [];
  for (const name of metricNames) {
    const metric = data.metrics[name];
    if (!metric) {
      lines.push(`${name}: no samples`);
      continue;
    }
    const v = metric.values;
    const shown =
      metric.type === 'trend'
        ? `count=${v.count} med=${fmt(v.med)} p(99)=${fmt(v['p(99)'])} p(99.9)=${fmt(v['p(99.9)'])} max=${fmt(v.max)} ms`
        : Object.keys(v)
            .map((k) => `${k}=${fmt(v[k])}`)
            .join(' ');
    const thresholds = Object.keys(metric.thresholds || {})
      .map((t) => `${t} ${metric.thresholds[t].ok ? 'ok' : 'FAILED'}`)
      .join(', ');
    lines.push(`${name}: ${shown}${thresholds ? `  [${thresholds}]` : ''}`);
  }
  const outputs = { stdout: `\n${lines.join('\n')}\n` };
  if (__ENV.SUMMARY_FILE) outputs[__ENV.SUMMARY_FILE] = JSON.stringify(data, null, 1);
  return outputs;
}

function fmt(x) {
  return typeof x === 'number' ? String(Math.round(x * 1000) / 1000) : String(x);
}
