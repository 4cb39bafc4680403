// A typed client of the read-state gateway (docs/protocol.md), independent of the WebSocket
// implementation: node-socket.ts adapts the `ws` package, browser-socket.ts the browser's
// WebSocket. Used by the tests, the load tools and the demo.
//
// Requests carry a nonce; the promise a request returns settles with the dispatch or the
// ERROR carrying that nonce, or rejects when the socket closes first. One GatewayClient is
// one socket; ReconnectingClient builds a session that survives drops on top of it.

import { Packr, Unpackr } from 'msgpackr';
import { GatewayError, PendingRequests } from './pending-requests.js';

export { GatewayError };

export type Encoding = 'json' | 'msgpack';

export interface ReadState {
  channel_id: string;
  last_message_id: string | null;
  last_acked_id: string | null;
  unread_count: number;
  mention_count: number;
}

export interface Ready {
  v: number;
  session_id: string;
  user: { id: string };
  read_states: ReadState[];
}

export interface ServerPayload {
  op: number;
  d: unknown;
  s?: number | null;
  t?: string | null;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** The socket under a client. */
export interface ClientSocket {
  send(data: string | Uint8Array, binary: boolean): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake, where the runtime allows it (Node's `ws`). */
  terminate?(): void;
}

export interface ClientSocketHandlers {
  open(): void;
  message(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
}

export type SocketFactory = (url: string, handlers: ClientSocketHandlers) => ClientSocket;

/** The socket closed before the answer came. */
export class GatewayClosedError extends Error {
  constructor(readonly close: CloseInfo) {
    super(`gateway closed: ${close.code} ${close.reason}`);
    this.name = 'GatewayClosedError';
  }
}

export interface ConnectOptions {
  encoding?: Encoding;
  socketFactory: SocketFactory;
  /** Send HEARTBEAT every heartbeat_interval (default true). */
  heartbeats?: boolean;
  /**
   * Keep every payload received in `received` (default false): for tests, which read it
   * and clear it as they go; a long-lived client would grow it without bound.
   */
  keepReceived?: boolean;
  /**
   * Requests shared with other sockets of the same session (ReconnectingClient): their
   * answers may arrive on a later socket, so this socket's close does not reject them.
   */
  requests?: PendingRequests;
  /** Called when a heartbeat falls due and the previous one was never acknowledged (a zombie socket). */
  onHeartbeatAckMissed?: () => void;
}

export interface MessageCreate {
  channel_id: string;
  mentions?: string[];
  mention_everyone?: boolean;
}

const packr = new Packr({ useRecords: false });
// 64-bit integers (a nonce above 2^32) as numbers: the protocol keeps them within 2^53.
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

export class GatewayClient {
  readonly encoding: Encoding;
  /** HELLO's heartbeat_interval, in ms. */
  heartbeatInterval = 0;
  /** Sequence of the last dispatch received, sent with heartbeats. */
  lastSequence: number | null = null;
  ready: Ready | undefined;
  /** Every payload received, in order, when connected with keepReceived; else empty. */
  readonly received: ServerPayload[] = [];
  readonly closed: Promise<CloseInfo>;
  /** RECONNECT (op 7) arrived: the server asks the client to come back, to `url` when given. */
  reconnectRequest: { url?: string } | undefined;
  private closeInfo: CloseInfo | undefined;

  private readonly socket: ClientSocket;
  private readonly keepReceived: boolean;
  private readonly pending: PendingRequests;
  private readonly ownsPending: boolean;
  private readonly onHeartbeatAckMissed: (() => void) | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeatUnacked = false;
  private readyWaiter: { resolve(ready: Ready): void; reject(error: Error): void } | undefined;
  private resumeWaiter: { resolve(resumed: boolean): void; reject(error: Error): void } | undefined;
  private readonly dispatchListeners = new Set<(event: string, d: unknown, sequence: number) => void>();
  private readonly payloadListeners = new Set<(payload: ServerPayload) => void>();
  private readonly helloSeen: () => void;

  private constructor(url: string, options: ConnectOptions, hello: { resolve(): void; reject(error: Error): void }) {
    this.encoding = options.encoding ?? 'json';
    this.keepReceived = options.keepReceived ?? false;
    this.ownsPending = options.requests === undefined;
    this.pending = options.requests ?? new PendingRequests();
    this.onHeartbeatAckMissed = options.onHeartbeatAckMissed;
    let onClosed!: (info: CloseInfo) => void;
    this.closed = new Promise((resolve) => (onClosed = resolve));
    this.helloSeen = hello.resolve;
    const target = new URL(url);
    target.searchParams.set('encoding', this.encoding);
    this.socket = options.socketFactory(target.toString(), {
      open: () => {},
      message: (data) => this.receive(data, options.heartbeats ?? true),
      close: (code, reason) => {
        this.closeInfo = { code, reason };
        clearInterval(this.heartbeatTimer);
        const error = new GatewayClosedError(this.closeInfo);
        if (this.ownsPending) this.pending.rejectAll(error);
        this.readyWaiter?.reject(error);
        this.resumeWaiter?.reject(error);
        hello.reject(error);
        onClosed(this.closeInfo);
      },
    });
  }

  /** Opens a session; resolves once HELLO arrived. */
  static connect(url: string, options: ConnectOptions): Promise<GatewayClient> {
    return new Promise((resolve, reject) => {
      const client: GatewayClient = new GatewayClient(url, options, { resolve: () => resolve(client), reject });
    });
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  /** IDENTIFY; resolves with READY, rejects when the session closes (4004 and others). */
  identify(token: string): Promise<Ready> {
    return new Promise((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
      this.send({ op: 2, d: { token } });
    });
  }

  /**
   * RESUME (instead of IDENTIFY): resolves true once RESUMED arrived (after the missed
   * dispatches), false on INVALID_SESSION (the socket stays open for identify()); rejects
   * when the session closes (4004 for a bad token).
   */
  resume(token: string, sessionId: string, seq: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.resumeWaiter = { resolve, reject };
      this.send({ op: 6, d: { token, session_id: sessionId, seq } });
    });
  }

  /** MESSAGE_CREATE; resolves with the author's new read state (its last_message_id is the message id). */
  createMessage(message: MessageCreate): Promise<ReadState> {
    return this.request(20, message);
  }

  /** MESSAGE_ACK; resolves with the user's read state after the ack. */
  ack(channelId: string, messageId: string): Promise<ReadState> {
    return this.request(21, { channel_id: channelId, message_id: messageId });
  }

  heartbeat(): void {
    this.heartbeatUnacked = true;
    this.send({ op: 1, d: this.lastSequence });
  }

  onDispatch(listener: (event: string, d: unknown, sequence: number) => void): () => void {
    this.dispatchListeners.add(listener);
    return () => this.dispatchListeners.delete(listener);
  }

  onPayload(listener: (payload: ServerPayload) => void): () => void {
    this.payloadListeners.add(listener);
    return () => this.payloadListeners.delete(listener);
  }

  /** Resolves with the next payload matching `test`. */
  waitFor(test: (payload: ServerPayload) => boolean, timeoutMs = 5000): Promise<ServerPayload> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error('timed out waiting for a payload'));
      }, timeoutMs);
      const stop = this.onPayload((payload) => {
        if (!test(payload)) return;
        clearTimeout(timer);
        stop();
        resolve(payload);
      });
    });
  }

  /** Encodes and sends any payload (the tests' way to send what the helpers would not). */
  send(payload: unknown): void {
    if (this.encoding === 'json') this.socket.send(JSON.stringify(payload), false);
    else this.socket.send(packr.pack(payload), true);
  }

  /** Sends a frame as is. */
  sendRaw(data: string | Uint8Array, binary = typeof data !== 'string'): void {
    this.socket.send(data, binary);
  }

  close(code = 1000, reason = ''): Promise<CloseInfo> {
    clearInterval(this.heartbeatTimer);
    if (this.closeInfo === undefined) this.socket.close(code, reason);
    return this.closed;
  }

  /**
   * Gives the socket up without waiting for the server (a zombie's closing handshake may
   * never complete): terminated where the socket allows it, else closed with `code`.
   */
  abort(code = 4000, reason = ''): void {
    clearInterval(this.heartbeatTimer);
    if (this.closeInfo !== undefined) return;
    if (this.socket.terminate !== undefined) this.socket.terminate();
    else this.socket.close(code, reason);
  }

  private request(op: number, fields: object): Promise<ReadState> {
    if (this.closeInfo !== undefined) return Promise.reject(new GatewayClosedError(this.closeInfo));
    // A field set to undefined (an optional one a caller passed on) is left out: JSON
    // would drop it, but msgpackr writes undefined as an extension, which the gateway
    // refuses (4002).
    const d: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) d[key] = value;
    return this.pending.add((nonce) => this.send({ op, d: { ...d, nonce } }));
  }

  private beat(): void {
    if (this.heartbeatUnacked && this.onHeartbeatAckMissed !== undefined) return this.onHeartbeatAckMissed();
    this.heartbeat();
  }

  private receive(data: string | Uint8Array, heartbeats: boolean): void {
    const payload = (typeof data === 'string' ? JSON.parse(data) : unpackr.unpack(data)) as ServerPayload;
    if (this.keepReceived) this.received.push(payload);
    for (const listener of this.payloadListeners) listener(payload);
    switch (payload.op) {
      case 10: {
        this.heartbeatInterval = (payload.d as { heartbeat_interval: number }).heartbeat_interval;
        if (heartbeats) this.heartbeatTimer = setInterval(() => this.beat(), this.heartbeatInterval);
        this.helloSeen();
        return;
      }
      case 11:
        this.heartbeatUnacked = false;
        return;
      case 7:
        this.reconnectRequest = (payload.d ?? {}) as { url?: string };
        return;
      case 9:
        this.resumeWaiter?.resolve(false);
        this.resumeWaiter = undefined;
        return;
      case 12:
        this.pending.failed(payload.d as { code: number; message: string; nonce?: number | string });
        return;
      case 0: {
        if (typeof payload.s === 'number') this.lastSequence = payload.s;
        const event = payload.t ?? '';
        if (event === 'READY') {
          this.ready = payload.d as Ready;
          this.readyWaiter?.resolve(this.ready);
          this.readyWaiter = undefined;
        } else if (event === 'READ_STATE_UPDATE') {
          this.pending.answered(payload.d as ReadState & { nonce?: number | string });
        }
        for (const listener of this.dispatchListeners) listener(event, payload.d, payload.s ?? 0);
        if (event === 'RESUMED') {
          this.resumeWaiter?.resolve(true);
          this.resumeWaiter = undefined;
        }
        return;
      }
    }
  }
}
