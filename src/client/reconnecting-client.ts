// A gateway session that survives dropped sockets (docs/protocol.md v2 "Reconnect and resume"),
// for apps: it connects, identifies, and whenever the socket drops (a network change, a
// proxy cutting an idle socket, a deploy, a zombie socket whose heartbeats go unanswered)
// it reconnects by itself and RESUMEs, so the app receives every update it missed, once
// and in order. Only when the server cannot resume does it IDENTIFY anew: the app is told
// by a `ready` event, whose READY carries every read state to rebuild the counts from.
//
// Back-off between attempts is exponential with full jitter, so a gateway restart is not
// met by every client at the same instant; after RECONNECT (op 7) the first attempt is at
// once, to the URL the server named if it named one.

import { type CloseInfo, type Encoding, GatewayClient, GatewayClosedError, type MessageCreate, type ReadState, type Ready, type SocketFactory } from './gateway-client.js';
import { PendingRequests } from './pending-requests.js';

export interface ReconnectingClientOptions {
  /** The gateway's WebSocket URL (ws://host:port/gateway). */
  url: string;
  /**
   * Other nodes of a cluster, tried in turn after `url` (or the node last redirected to)
   * cannot be reached, say because it died; whichever answers sends the client on to the
   * node serving its user (RECONNECT + 4010).
   */
  fallbackUrls?: readonly string[];
  /** The user's token, or a function giving one (called for every IDENTIFY and RESUME, so it may refresh it). */
  token: string | (() => string | Promise<string>);
  socketFactory: SocketFactory;
  encoding?: Encoding;
  /** First back-off step, in ms (default 500): attempt n waits a random time below min(max, first × 2^n). */
  backoffMs?: number;
  /** Longest back-off, in ms (default 30,000). */
  maxBackoffMs?: number;
  /** Source of jitter (default Math.random), for tests. */
  random?: () => number;
}

/** What the client has been through, for load tools and dashboards. */
export interface ReconnectingClientStats {
  /** Sockets opened after the first one. */
  reconnects: number;
  /** RESUMEs that came back with RESUMED. */
  resumes: number;
  /** Dispatches received again through RESUME. */
  replayed: number;
  /** RESUMEs answered with INVALID_SESSION (followed by a fresh IDENTIFY). */
  invalidSessions: number;
  /** Sockets given up because a heartbeat went unacknowledged. */
  zombies: number;
  /** RECONNECTs received (a server stopping, or a user moving to another node). */
  reconnectRequests: number;
  /** Of those, redirects to the node serving the user (close 4010), followed at once. */
  redirects: number;
}

export interface ReconnectingEvent {
  attempt: number;
  delayMs: number;
  /** Why: the close code of the socket that dropped, or 'zombie'. */
  reason: number | 'zombie';
}

interface Listeners {
  /** A fresh READY (the first, or after INVALID_SESSION): rebuild every count from it. */
  ready: (ready: Ready) => void;
  /** The session was resumed: the missed dispatches came before this, through `dispatch`. */
  resumed: (info: { replayed: number }) => void;
  /** The socket dropped; the next attempt starts after delayMs. */
  reconnecting: (event: ReconnectingEvent) => void;
  /** Every dispatch, replayed ones included, in sequence order. */
  dispatch: (event: string, d: unknown, sequence: number) => void;
  /** The client stopped for good: close() was called, or the server refused the token (4004). */
  closed: (info: CloseInfo) => void;
}

/** The request was not answered: the session was lost, or no socket was up when it was made. */
export class NotDeliveredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotDeliveredError';
  }
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([4004]);

export class ReconnectingClient {
  readonly stats: ReconnectingClientStats = { reconnects: 0, resumes: 0, replayed: 0, invalidSessions: 0, zombies: 0, reconnectRequests: 0, redirects: 0 };
  state: 'connecting' | 'ready' | 'reconnecting' | 'closed' = 'connecting';
  sessionId: string | null = null;
  /** `s` of the last dispatch received: where a RESUME starts from. */
  lastSequence: number | null = null;
  private current: GatewayClient | null = null;
  private readonly requests = new PendingRequests();
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    ready: new Set(),
    resumed: new Set(),
    reconnecting: new Set(),
    dispatch: new Set(),
    closed: new Set(),
  };
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Where the next attempt goes: the URL given, then the node a RECONNECT named, then the fallbacks in turn. */
  private url: string;
  private readonly random: () => number;

  constructor(private readonly options: ReconnectingClientOptions) {
    this.random = options.random ?? Math.random;
    this.url = options.url;
    void this.connect();
  }

  /** The node the client is connected to, or will try next. */
  get currentUrl(): string {
    return this.url;
  }

  on<K extends keyof Listeners>(event: K, listener: Listeners[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  /** Resolves once the session is up (READY or RESUMED); rejects if the client closes first. */
  whenReady(): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new NotDeliveredError('the client is closed'));
    return new Promise((resolve, reject) => {
      const stops = [
        this.on('ready', () => done(resolve)),
        this.on('resumed', () => done(resolve)),
        this.on('closed', (info) => done(() => reject(new GatewayClosedError(info)))),
      ];
      const done = (settle: () => void) => {
        for (const stop of stops) stop();
        settle();
      };
    });
  }

  /** MESSAGE_CREATE; resolves with the author's new read state. Rejects at once while no session is up. */
  createMessage(message: MessageCreate): Promise<ReadState> {
    return this.whileReady((client) => client.createMessage(message));
  }

  /** MESSAGE_ACK; resolves with the user's read state after the ack. */
  ack(channelId: string, messageId: string): Promise<ReadState> {
    return this.whileReady((client) => client.ack(channelId, messageId));
  }

  /** Ends the session (close 1000: the server forgets it at once) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const client = this.current;
    this.finish({ code: 1000, reason: 'closed by the client' });
    await client?.close(1000);
  }

  private whileReady(request: (client: GatewayClient) => Promise<ReadState>): Promise<ReadState> {
    if (this.state !== 'ready' || this.current === null) return Promise.reject(new NotDeliveredError(`not connected (${this.state}): the request was not sent`));
    return request(this.current);
  }

  private async connect(): Promise<void> {
    const url = this.url;
    let client: GatewayClient;
    try {
      client = await GatewayClient.connect(url, {
        encoding: this.options.encoding,
        socketFactory: this.options.socketFactory,
        requests: this.requests,
        onHeartbeatAckMissed: () => this.dropped(client, 'zombie'),
      });
    } catch (error) {
      // Refused, or closed before HELLO: try again later, at the next node if there are others.
      this.tryNextUrl();
      return this.dropped(null, error instanceof GatewayClosedError ? error.close.code : 1006);
    }
    if (this.state === 'closed') {
      void client.close(1000);
      return;
    }
    this.current = client;
    client.onDispatch((event, d, sequence) => {
      if (this.current !== client) return;
      if (sequence > 0) this.lastSequence = sequence;
      for (const listener of this.listeners.dispatch) listener(event, d, sequence);
    });
    void client.closed.then((info) => this.dropped(client, info.code));
    try {
      const token = typeof this.options.token === 'string' ? this.options.token : await this.options.token();
      if (this.sessionId !== null && this.lastSequence !== null) {
        const before = this.stats.replayed;
        const stop = client.onDispatch((event) => {
          if (event !== 'RESUMED') this.stats.replayed++;
        });
        const resumed = await client.resume(token, this.sessionId, this.lastSequence);
        stop();
        if (resumed) {
          this.stats.resumes++;
          this.up();
          // Every request the old socket delivered was answered before RESUMED: the rest never reached the server.
          this.requests.rejectAll(new NotDeliveredError('the socket dropped before the server received the request'));
          const replayed = this.stats.replayed - before;
          for (const listener of this.listeners.resumed) listener({ replayed });
          return;
        }
        this.stats.invalidSessions++;
        this.requests.rejectAll(new NotDeliveredError('the session was lost: the request may or may not have been applied'));
      }
      const ready = await client.identify(token);
      this.sessionId = ready.session_id;
      this.up();
      for (const listener of this.listeners.ready) listener(ready);
    } catch {
      // The socket closed while identifying or resuming, or the token could not be had: either
      // way the socket is given up, and its close schedules the next attempt after the back-off.
      client.abort();
    }
  }

  private up(): void {
    this.state = 'ready';
    this.attempt = 0;
  }

  /** The socket dropped (or never came up): reconnect after the back-off, at once after RECONNECT. */
  private dropped(client: GatewayClient | null, reason: number | 'zombie'): void {
    if (this.state === 'closed' || (client !== null && client !== this.current)) return;
    this.current = null;
    if (reason === 'zombie') {
      this.stats.zombies++;
      client?.abort(4000, 'heartbeat not acknowledged');
    }
    if (typeof reason === 'number' && FINAL_CLOSE_CODES.has(reason)) {
      return this.finish({ code: reason, reason: 'refused by the gateway' });
    }
    const request = client?.reconnectRequest;
    let delayMs: number;
    if (request !== undefined) {
      this.stats.reconnectRequests++;
      if (reason === 4010) this.stats.redirects++;
      if (request.url !== undefined) this.url = request.url;
      delayMs = 0;
    } else {
      const ceiling = Math.min(this.options.maxBackoffMs ?? 30_000, (this.options.backoffMs ?? 500) * 2 ** this.attempt);
      delayMs = Math.floor(this.random() * ceiling);
    }
    this.attempt++;
    this.stats.reconnects++;
    this.state = 'reconnecting';
    for (const listener of this.listeners.reconnecting) listener({ attempt: this.attempt, delayMs, reason });
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private tryNextUrl(): void {
    const urls = [this.options.url, ...(this.options.fallbackUrls ?? [])];
    this.url = urls[(urls.indexOf(this.url) + 1) % urls.length];
  }

  private finish(info: CloseInfo): void {
    this.state = 'closed';
    this.current = null;
    clearTimeout(this.retryTimer);
    this.requests.rejectAll(new NotDeliveredError('the client closed before an answer came'));
    for (const listener of this.listeners.closed) listener(info);
  }
}
