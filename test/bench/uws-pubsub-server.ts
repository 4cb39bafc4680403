// The peer of the fan-out benchmark: raw uWS pub/sub, the floor for "a message reaches every
// member's socket". Each socket subscribes to its channel's topic (the benchmark names the
// channel in the URL); a MESSAGE_CREATE is parsed, given an id, and published to the topic
// as a READ_STATE_UPDATE-shaped frame, the author's socket included, with the author's
// nonce so it can tell the id. No state, no persistence, no per-member work in JavaScript.
// Run as its own process:
//   node dist/test/bench/uws-pubsub-server.js <port>
// Prints "listening <port>" once bound.

import uWS from 'uWebSockets.js';
import { listenPeer } from './uws-peer.js';

const port = Number(process.argv[2] ?? 0);
let nextId = 1n << 60n;

interface SocketData {
  channel: string;
}

const app: uWS.TemplatedApp = uWS.App().ws<SocketData>('/gateway', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 0,
  upgrade: (res, req, context) => {
    const data: SocketData = { channel: req.getQuery('channel') ?? '' };
    res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => {
    ws.subscribe(ws.getUserData().channel);
  },
  message: (ws, message) => {
    const request = JSON.parse(Buffer.from(message).toString()) as { op: number; d: { channel_id: string; nonce: number } };
    if (request.op !== 20) return;
    const id = (nextId++).toString();
    const { channel_id: channel, nonce } = request.d;
    app.publish(
      channel,
      `{"op":0,"t":"READ_STATE_UPDATE","s":0,"d":{"channel_id":"${channel}","last_message_id":"${id}","last_acked_id":null,"unread_count":1,"mention_count":0,"nonce":${nonce}}}`,
    );
  },
});
listenPeer(app, port);
