// Fan-out in one large channel (npm run k6 -- fanout --members M: one channel of M users).
// The members' sessions are spread over VUs (SOCKETS_PER_VU each); the first member posts
// RATE messages a second, and every other member times its update.
//
// fanout_latency_id_clock: from the time inside the message id (the server's clock when it
// created the message, whole milliseconds) to the Go-side timestamp of the update's frame.
// Senders and receivers are in different VUs, which share no memory, so the id is the only
// send time a receiver can know; it is truncated to the millisecond, so every sample is an
// over-estimate by 0 to 1 ms: read the figures as whole milliseconds.
//
// Env: RATE (messages/s, default 1), DURATION (60s), SOCKETS_PER_VU (50), P99_MS /
// P999_MS (thresholds, default 150 / 250), DRAIN_MS (2000).

import { Counter, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { durationSeconds, groups, Op, openSession, snowflakeMs, summaryOutputs } from './lib/gateway.js';

const RATE = Number(__ENV.RATE || 1);
const DURATION_S = durationSeconds(__ENV.DURATION || '60s');
const SOCKETS_PER_VU = Number(__ENV.SOCKETS_PER_VU || 50);
const DRAIN_MS = Number(__ENV.DRAIN_MS || 2000);
const READY_TIMEOUT_MS = 30_000;
const SENDER_DELAY_MS = 5000;
const channel = groups[0];

const fanoutLatency = new Trend('fanout_latency_id_clock', true);
const updatesReceived = new Counter('updates_received');
const messagesSent = new Counter('messages_sent');
const gatewayErrors = new Counter('gateway_errors');
const unexpectedCloses = new Counter('unexpected_closes');
const sessionsReady = new Rate('sessions_ready');

export const options = {
  scenarios: {
    fanout: { executor: 'per-vu-iterations', vus: Math.ceil(channel.members.length / SOCKETS_PER_VU), iterations: 1, maxDuration: `${DURATION_S + 120}s` },
  },
  thresholds: {
    fanout_latency_id_clock: [`p(99)<${__ENV.P99_MS || 150}`, `p(99.9)<${__ENV.P999_MS || 250}`],
    sessions_ready: ['rate==1'],
    gateway_errors: ['count==0'],
    unexpected_closes: ['count==0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max', 'count'],
};

export default function () {
  const first = (__VU - 1) * SOCKETS_PER_VU;
  const mine = channel.members.slice(first, first + SOCKETS_PER_VU);
  const sessions = [];
  let ready = 0;
  let stopping = false;
  let ticker = null;
  const lastSeen = [];

  const readyTimer = setTimeout(() => {
    if (ready < mine.length) {
      sessionsReady.add(0);
      finish();
    }
  }, READY_TIMEOUT_MS);

  mine.forEach((member, index) => {
    const session = openSession(member.token, {
      ready() {
        sessionsReady.add(1);
        if (++ready === mine.length) start();
      },
      dispatch(t, d, event) {
        if (t !== 'READ_STATE_UPDATE' || d.channel_id !== channel.channelId || d.nonce !== undefined) return;
        const id = d.last_message_id;
        if (id === null || lastSeen[index] === id) return;
        lastSeen[index] = id;
        updatesReceived.add(1);
        fanoutLatency.add(event.timestamp - snowflakeMs(id));
      },
      error(d) {
        gatewayErrors.add(1, { code: String(d.code) });
      },
      close(code) {
        if (!stopping) unexpectedCloses.add(1, { code: String(code) });
      },
    });
    sessions.push(session);
  });

  function start() {
    clearTimeout(readyTimer);
    // The sender (first VU) waits a few seconds so the other VUs' sessions are up, and
    // every VU stays until the sender's last message has had time to arrive.
    if (__VU === 1) {
      setTimeout(() => {
        ticker = setInterval(() => {
          sessions[0].send(Op.messageCreate, { channel_id: channel.channelId });
          messagesSent.add(1);
        }, 1000 / RATE);
      }, SENDER_DELAY_MS);
    }
    setTimeout(() => {
      if (ticker !== null) clearInterval(ticker);
      ticker = null;
      setTimeout(finish, DRAIN_MS);
    }, SENDER_DELAY_MS + DURATION_S * 1000);
  }

  function finish() {
    stopping = true;
    if (ticker !== null) clearInterval(ticker);
    for (const session of sessions) session.close();
  }
}

export function handleSummary(data) {
  return summaryOutputs(data, ['fanout_latency_id_clock', 'messages_sent', 'updates_received', 'gateway_errors', 'unexpected_closes', 'sessions_ready', 'ws_sessions']);
}
