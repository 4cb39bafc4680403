// The baseline of the gateway benchmark: a bare uWS WebSocket server that sends every frame
// straight back, with the gateway's socket settings. Run as its own process:
//   node dist/test/bench/uws-echo-server.js <port>
// Prints "listening <port>" once bound.

import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? 0);
uWS
  .App()
  .ws('/gateway', {
    maxPayloadLength: 16 * 1024,
    maxBackpressure: 1024 * 1024,
    closeOnBackpressureLimit: 1,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write(`cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(socket as unknown as uWS.us_socket)}\n`);
  });
process.on('SIGTERM', () => process.exit(0));
