// A TCP relay on a fixed local port in front of a gateway whose port changes when it is
// restarted (the harness picks a free one each time), so a page served through the relay can
// outlive the process that served it, as behind a load balancer. HTTP and WebSocket traffic
// pass through as bytes; a connection ends when either side ends it. The resume tests use it
// to fail the network under a live socket: cut() resets every connection, stall() leaves
// them open but silent (a zombie socket, as after a NAT rebinding).

import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpRelay {
  private readonly connections = new Set<Socket>();
  /** Pairs of (client, upstream) sockets, for stall(). */
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    private targetPort: number,
  ) {
    server.on('connection', (client) => this.relay(client));
  }

  static start(targetPort: number): Promise<TcpRelay> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      const relay = new TcpRelay(server, targetPort);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(relay));
    });
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the relay is not listening');
    return address.port;
  }

  /** New connections go to `port`; open ones stay where they are. */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Resets every open connection (both sides see the TCP connection die); new ones pass. */
  cut(): void {
    for (const socket of this.connections) socket.resetAndDestroy();
  }

  /** Stops relaying on every open connection without closing it; new ones pass. */
  stall(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    this.pairs.clear();
  }

  close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    upstream.on('close', () => this.pairs.delete(pair));
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.connections.add(socket);
      // A refused or reset side takes the other down with it, as a dead backend would.
      socket.on('error', () => other.destroy());
      socket.on('close', () => {
        this.connections.delete(socket);
        other.destroy();
      });
      socket.pipe(other);
    }
  }
}
