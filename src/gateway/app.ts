// The uWS application: the /gateway WebSocket route, the HTTP API on the same port,
// backpressure limits, listening, and the graceful close.

import type { Logger } from 'pino';
import uWS from 'uWebSockets.js';
import type { Config } from '../config.js';
import { CloseCode, type Encoding } from './codec.js';
import { Dispatcher } from './dispatch.js';
import { mountHttpApi } from './http-api.js';
import { newOutboxSlot, Outbox, type OutboxSlot } from './outbox.js';
import { GatewayMetrics } from './metrics.js';
import type { ReadStateService } from './read-state-service.js';
import { type AdminOperations, LocalAdminOperations } from './admin-operations.js';
import { Connection, type ConnectionEnvironment, IDENTIFY_TIMEOUT_MS, type UserRouting } from './connection.js';
import { ResumableSessions } from './resumable-sessions.js';
import { UserTokens } from './user-tokens.js';

/**
 * uWS's own frame limit: above the protocol's 4096 bytes, so an oversized payload gets the
 * protocol's 4002 from the codec instead of an abrupt close from uWS.
 */
const MAX_FRAME_BYTES = 16 * 1024;
/** Unsent bytes a socket may hold; a consumer slower than that is closed (memory stays bounded). */
const MAX_BACKPRESSURE_BYTES = 1024 * 1024;
/** uSockets: listen without SO_REUSEPORT, so a port in use fails instead of silently sharing traffic. */
const LISTEN_EXCLUSIVE_PORT = 1;

type GatewayConfig = Pick<
  Config,
  'host' | 'port' | 'heartbeatIntervalMs' | 'rateLimit' | 'rateWindowMs' | 'resumeWindowMs' | 'resumeBuffer' | 'jwtSecret' | 'adminToken'
>;

export interface GatewayOptions {
  config: GatewayConfig;
  readStates: ReadStateService;
  log: Logger;
  /** Mounts further HTTP routes (the development demo) ahead of the API's catch-all 404. */
  mountRoutes?: (app: uWS.TemplatedApp) => void;
  /** A cluster node's parts (src/cluster); absent on a single node. */
  cluster?: GatewayClusterParts;
}

export interface GatewayClusterParts {
  routing: UserRouting;
  /** Wraps this process's admin operations so that each runs on the node serving its user. */
  adminOperations: (local: AdminOperations) => AdminOperations;
  /** GET /v1/cluster. */
  view: () => unknown;
}

interface SocketData {
  encoding: Encoding;
  connection: Connection | undefined;
  outbox: OutboxSlot;
}

/** `listen(host, port, options, cb)` exists in the binary but not in the bundled typings. */
type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: uWS.us_listen_socket | false) => void) => uWS.TemplatedApp;

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly dispatcher: Dispatcher;
  /** What the admin API's calls do (on a cluster node, each on its user's node). */
  readonly adminOperations: AdminOperations;
  private readonly sessions: ResumableSessions;
  private readonly app: uWS.TemplatedApp;
  private readonly connections = new Set<Connection>();
  private readonly outbox = new Outbox();
  private listenSocket: uWS.us_listen_socket | undefined;

  constructor(private readonly options: GatewayOptions) {
    const { config, readStates, log } = options;
    this.dispatcher = new Dispatcher(readStates, log);
    this.sessions = new ResumableSessions(this.dispatcher, config.resumeWindowMs, config.resumeBuffer);
    this.metrics = new GatewayMetrics(
      readStates,
      () => this.dispatcher.onlineUsers,
      () => this.sessions.stats,
    );
    const environment: ConnectionEnvironment = {
      readStates,
      dispatcher: this.dispatcher,
      sessions: this.sessions,
      tokens: new UserTokens(config.jwtSecret),
      metrics: this.metrics,
      log,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      rateLimit: config.rateLimit,
      rateWindowMs: config.rateWindowMs,
      identifyTimeoutMs: IDENTIFY_TIMEOUT_MS,
      routing: options.cluster?.routing,
    };

    this.app = uWS.App();
    this.app.ws<SocketData>('/gateway', {
      maxPayloadLength: MAX_FRAME_BYTES,
      maxBackpressure: MAX_BACKPRESSURE_BYTES,
      closeOnBackpressureLimit: 1,
      // Liveness is the protocol's heartbeat timeout, not uWS's idle timer.
      idleTimeout: 0,
      compression: uWS.DISABLED,
      upgrade: (res, req, context) => {
        const requested = req.getQuery('encoding') as string | undefined;
        const encoding = requested === undefined ? 'json' : requested;
        if (encoding !== 'json' && encoding !== 'msgpack') {
          res.writeStatus('400 Bad Request').writeHeader('content-type', 'application/json');
          res.end(JSON.stringify({ code: 50035, message: 'encoding must be json or msgpack' }));
          return;
        }
        const data: SocketData = { encoding, connection: undefined, outbox: newOutboxSlot(encoding === 'msgpack') };
        res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
      },
      open: (ws) => {
        const data = ws.getUserData();
        const outbox = this.outbox;
        const connection = new Connection(
          {
            send: (frame) => outbox.send(ws, data.outbox, frame),
            end: (code, reason) => {
              outbox.flushSocket(ws, data.outbox);
              if (!data.outbox.closed) ws.end(code, reason);
            },
          },
          data.encoding,
          environment,
        );
        data.connection = connection;
        this.connections.add(connection);
        connection.open();
      },
      message: (ws, message) => {
        const connection = ws.getUserData().connection;
        try {
          connection?.receive(new Uint8Array(message));
        } catch (error) {
          // A defect, not a client's doing: this connection ends, the process and the others go on.
          log.error({ err: error, session: connection?.session?.id }, 'handling a frame failed');
          connection?.close(CloseCode.unknownError);
        }
      },
      close: (ws, code) => {
        const data = ws.getUserData();
        data.outbox.closed = true;
        const connection = data.connection;
        if (connection === undefined) return;
        this.connections.delete(connection);
        connection.socketClosed(code);
      },
    });
    options.mountRoutes?.(this.app);
    const local = new LocalAdminOperations(readStates, this.dispatcher);
    this.adminOperations = options.cluster?.adminOperations(local) ?? local;
    mountHttpApi(this.app, { readStates, operations: this.adminOperations, cluster: options.cluster?.view, metrics: this.metrics, adminToken: config.adminToken, log });
  }

  /** Binds HOST:PORT; resolves with the port bound (useful with PORT=0). */
  listen(): Promise<number> {
    const { host, port } = this.options.config;
    return new Promise((resolve, reject) => {
      (this.app.listen as unknown as ListenWithOptions)(host, port, LISTEN_EXCLUSIVE_PORT, (socket) => {
        if (socket === false) return reject(new Error(`cannot listen on ${host}:${port} (in use or not permitted)`));
        this.listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
      });
    });
  }

  /**
   * Stops accepting connections and tells every client to reconnect: RECONNECT (naming the
   * node that takes the user over, on a cluster), then close with 1001 (going away).
   */
  close(urlOf: (userId: string) => string | undefined = () => undefined): void {
    if (this.listenSocket !== undefined) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    for (const connection of [...this.connections]) {
      const userId = connection.session?.userId;
      connection.reconnect(CloseCode.goingAway, userId === undefined ? undefined : urlOf(userId));
    }
    this.connections.clear();
  }

  /**
   * Users this node no longer serves (a cluster's shards moved): each socket gets RECONNECT
   * to the user's new node and closes with 4010, and the sessions end here, since a RESUME
   * at the new node cannot find them. Returns the sockets moved.
   */
  moveUsers(urlOf: (userId: string) => string | undefined): number {
    let moved = 0;
    for (const connection of [...this.connections]) {
      const userId = connection.session?.userId;
      const url = userId === undefined ? undefined : urlOf(userId);
      if (url === undefined) continue;
      this.connections.delete(connection);
      connection.reconnect(CloseCode.movedToAnotherNode, url);
      moved++;
    }
    this.sessions.endUsers((userId) => urlOf(userId) !== undefined);
    return moved;
  }
}
