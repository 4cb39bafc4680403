// The baseline of the gateway benchmark: a bare uWS WebSocket server that sends every frame
// straight back, with the gateway's socket settings. Run as its own process:
//   node dist/test/bench/uws-echo-server.js <port>
// Prints "listening <port>" once bound.

import uWS from 'uWebSockets.js';
import { listenPeer } from './uws-peer.js';

const port = Number(process.argv[2] ?? 0);
const app = uWS.App().ws('/gateway', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 0,
  message: (ws, message, isBinary) => {
    ws.send(message, isBinary);
  },
});
listenPeer(app, port);
