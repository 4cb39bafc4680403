// Steady load with latency thresholds on p(99) and p(99.9).
//
// One VU per channel of the fixture (npm run k6 -- steady --groups G --members M), holding
// a session for each member. RATE times a second the channel gets a message from the next
// member in turn; every other member receives READ_STATE_UPDATE and, with ACK_PROBABILITY,
// acks it at once. Two latencies, both measured between Go-side frame timestamps (see
// lib/gateway.js), in milliseconds with sub-millisecond resolution:
// - fanout_latency: the sender's HEARTBEAT_ACK is read (the MESSAGE_CREATE goes out in that
//   callback) -> each member's update for that message is read;
// - ack_latency: a member's update is read (the MESSAGE_ACK goes out in that callback) ->
//   the answer to the ack is read.
// Sending on a heartbeat's answer is what gives the send a high-resolution time.
//
// Env: RATE (messages/s per channel, default 2), DURATION (default 60s), ACK_PROBABILITY
// (0.5), P99_MS / P999_MS (thresholds, default 20 / 50), DRAIN_MS (2000).
// Per session that is about RATE * (2 / M + ACK_PROBABILITY) payloads a second: with the
// defaults 1.4/s, under the gateway's default rate limit (120 a minute).

import { Counter, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { durationSeconds, groups, Op, openSession, summaryOutputs } from './lib/gateway.js';

const RATE = Number(__ENV.RATE || 2);
const DURATION_S = durationSeconds(__ENV.DURATION || '60s');
const ACK_PROBABILITY = Number(__ENV.ACK_PROBABILITY || 0.5);
const DRAIN_MS = Number(__ENV.DRAIN_MS || 2000);
const READY_TIMEOUT_MS = 30_000;

const fanoutLatency = new Trend('fanout_latency', true);
const ackLatency = new Trend('ack_latency', true);
const missedUpdates = new Counter('missed_updates');
const gatewayErrors = new Counter('gateway_errors');
const unexpectedCloses = new Counter('unexpected_closes');
const sessionsReady = new Rate('sessions_ready');
const messagesSent = new Counter('messages_sent');

export const options = {
  scenarios: {
    steady: { executor: 'per-vu-iterations', vus: groups.length, iterations: 1, maxDuration: `${DURATION_S + 120}s` },
  },
  thresholds: {
    fanout_latency: [`p(99)<${__ENV.P99_MS || 20}`, `p(99.9)<${__ENV.P999_MS || 50}`],
    ack_latency: [`p(99)<${__ENV.P99_MS || 20}`, `p(99.9)<${__ENV.P999_MS || 50}`],
    sessions_ready: ['rate==1'],
    missed_updates: ['count==0'],
    gateway_errors: ['count==0'],
    unexpected_closes: ['count==0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max', 'count'],
};

export default function () {
  const group = groups[__VU - 1];
  const channelId = group.channelId;
  const members = group.members;
  const sessions = [];
  let ready = 0;
  let stopping = false;
  let nonce = 0;
  let nextSender = 0;
  let ticker = null;

  // Per message: Go timestamp of the trigger, by nonce until the id is known, then by id.
  const createTriggeredAt = {};
  const sentAt = {};
  const received = {};
  const early = {};
  // Per ack: Go timestamp of the update it answers, by nonce.
  const ackTriggeredAt = {};
  const lastSeen = [];

  const readyTimer = setTimeout(() => {
    if (ready < members.length) {
      sessionsReady.add(0);
      finish();
    }
  }, READY_TIMEOUT_MS);

  members.forEach((member, index) => {
    const session = openSession(member.token, {
      ready() {
        sessionsReady.add(1);
        if (++ready === members.length) start();
      },
      heartbeatAck(event) {
        if (!session.sendNext) return;
        session.sendNext = false;
        const n = ++nonce;
        createTriggeredAt[n] = event.timestamp;
        session.send(Op.messageCreate, { channel_id: channelId, nonce: n });
        messagesSent.add(1);
      },
      dispatch(t, d, event) {
        if (t === 'READ_STATE_UPDATE' && d.channel_id === channelId) update(index, session, d, event.timestamp);
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

  function update(index, session, d, at) {
    if (d.nonce !== undefined) {
      // The answer to this session's own request.
      if (createTriggeredAt[d.nonce] !== undefined) {
        const id = d.last_message_id;
        sentAt[id] = createTriggeredAt[d.nonce];
        delete createTriggeredAt[d.nonce];
        received[id] = received[id] || 0;
        for (const t of early[id] || []) fanoutLatency.add(t - sentAt[id]);
        delete early[id];
      } else if (ackTriggeredAt[d.nonce] !== undefined) {
        ackLatency.add(at - ackTriggeredAt[d.nonce]);
        delete ackTriggeredAt[d.nonce];
      }
      return;
    }
    const id = d.last_message_id;
    if (id === null || lastSeen[index] === id) return;
    lastSeen[index] = id;
    received[id] = (received[id] || 0) + 1;
    if (sentAt[id] !== undefined) fanoutLatency.add(at - sentAt[id]);
    else (early[id] = early[id] || []).push(at);
    if (!stopping && Math.random() < ACK_PROBABILITY) {
      const n = ++nonce;
      ackTriggeredAt[n] = at;
      session.send(Op.messageAck, { channel_id: channelId, message_id: id, nonce: n });
    }
  }

  function start() {
    clearTimeout(readyTimer);
    ticker = setInterval(() => {
      // The next sender asks for a heartbeat answer; the message goes out when it is read.
      const session = sessions[nextSender++ % sessions.length];
      session.sendNext = true;
      session.heartbeat();
    }, 1000 / RATE);
    setTimeout(() => {
      clearInterval(ticker);
      ticker = null;
      setTimeout(finish, DRAIN_MS);
    }, DURATION_S * 1000);
  }

  function finish() {
    stopping = true;
    if (ticker !== null) clearInterval(ticker);
    // Every message known by id should have reached the other members by now.
    for (const id of Object.keys(sentAt)) missedUpdates.add(members.length - 1 - received[id]);
    const unanswered = Object.keys(createTriggeredAt).length;
    if (unanswered > 0) missedUpdates.add(unanswered * (members.length - 1), { reason: 'no answer to create' });
    for (const session of sessions) session.close();
  }
}

export function handleSummary(data) {
  return summaryOutputs(data, ['fanout_latency', 'ack_latency', 'messages_sent', 'missed_updates', 'gateway_errors', 'unexpected_closes', 'sessions_ready', 'ws_sessions']);
}
