// What the bare uWS peers of the benchmarks share: listen on loopback, print
// "listening <port>" once bound (bench-servers.ts waits for it), exit on SIGTERM.

import uWS from 'uWebSockets.js';

export function listenPeer(app: uWS.TemplatedApp, port: number): void {
  app.listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write(`cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write(`listening ${uWS.us_socket_local_port(socket as unknown as uWS.us_socket)}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
