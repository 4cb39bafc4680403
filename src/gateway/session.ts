// One WebSocket session: HELLO on open, IDENTIFY within the timeout, heartbeats, the rate
// limit, then MESSAGE_CREATE / MESSAGE_ACK driving the read states (PROTOCOL.md "Session").
//
// A session's requests are answered strictly in the order they arrived, even when one
// waits for a load from the store: while a request is in flight the following ones queue
// behind it; with nothing in flight a request starts at once, inside the socket callback.
// Heartbeats are not requests: each is acknowledged on arrival, so a slow load never makes
// a healthy connection look dead.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AckResult, CreateResult, Failure } from '../store/persistent-read-states.js';
import {
  type ClientRequest,
  CLOSE_REASONS,
  CloseCode,
  decodeFrame,
  type Encoding,
  encodeDispatch,
  encodeError,
  encodeHeartbeatAck,
  encodeHello,
  type ErrorCode,
  type Frame,
  type Nonce,
  Op,
  type PreparedReadState,
} from './codec.js';
import type { Dispatcher } from './dispatch.js';
import type { GatewayMetrics } from './metrics.js';
import type { ReadStateService } from './read-state-service.js';
import { TokenBucket } from './token-bucket.js';
import type { UserTokens } from './user-tokens.js';

/** PROTOCOL.md: IDENTIFY must arrive within 10 s of HELLO. */
export const IDENTIFY_TIMEOUT_MS = 10_000;

/** The socket under a session (uWS in production, a recorder in unit tests). */
export interface SessionSocket {
  send(frame: Frame): void;
  /** Closes with a code (after the frames sent before); the session is told through socketClosed(). */
  end(code: number, reason: string): void;
}

/** What every session shares. */
export interface SessionEnvironment {
  readStates: ReadStateService;
  dispatcher: Dispatcher;
  tokens: UserTokens;
  metrics: GatewayMetrics;
  log: Logger;
  heartbeatIntervalMs: number;
  rateLimit: number;
  rateWindowMs: number;
  identifyTimeoutMs: number;
}

type Request = Exclude<ClientRequest, { kind: 'heartbeat' } | { kind: 'close' }>;

const OP_OF_KIND = { heartbeat: Op.heartbeat, identify: Op.identify, create: Op.messageCreate, ack: Op.messageAck } as const;

export class Session {
  readonly id = randomBytes(16).toString('hex');
  /** Set once IDENTIFY succeeded and READY was sent. */
  userId: string | null = null;
  private sequence = 0;
  private isClosed = false;
  private identifying = false;
  /** A request is in flight: later ones wait in the queue. */
  private busy = false;
  private readonly queue: Request[] = [];
  private readonly queuedAt: number[] = [];
  private readonly bucket: TokenBucket;
  private identifyTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: SessionSocket,
    readonly encoding: Encoding,
    private readonly env: SessionEnvironment,
  ) {
    this.bucket = new TokenBucket(env.rateLimit, env.rateWindowMs, Date.now());
  }

  open(): void {
    this.env.metrics.connections.inc();
    this.identifyTimer = setTimeout(() => this.close(CloseCode.sessionTimedOut), this.env.identifyTimeoutMs).unref();
    this.heartbeatTimer = setTimeout(() => this.close(CloseCode.sessionTimedOut), this.env.heartbeatIntervalMs * 1.5).unref();
    this.send(encodeHello(this.encoding, this.env.heartbeatIntervalMs));
  }

  /** A frame from the client; `frame` is only read during this call. */
  receive(frame: Uint8Array): void {
    if (this.isClosed) return;
    const receivedAt = performance.now();
    if (!this.bucket.take(Date.now())) return this.close(CloseCode.rateLimited);
    const request = decodeFrame(frame, this.encoding);
    if (request.kind === 'close') {
      this.env.metrics.countRequest(-1);
      return this.close(request.code);
    }
    this.env.metrics.countRequest(request.kind === 'invalid' ? request.op : OP_OF_KIND[request.kind]);
    if (request.kind === 'heartbeat') {
      this.heartbeatTimer?.refresh();
      return this.send(encodeHeartbeatAck(this.encoding));
    }
    if (this.busy) {
      this.queue.push(request);
      this.queuedAt.push(receivedAt);
      return;
    }
    this.run(request, receivedAt);
  }

  /** Closes the socket with `code` (no-op once closed). */
  close(code: CloseCode): void {
    if (this.isClosed) return;
    this.socket.end(code, CLOSE_REASONS[code]);
    this.release(code);
  }

  /** The socket closed, by either side: stop timers, leave presence. Idempotent. */
  socketClosed(code: number): void {
    this.release(code);
  }

  /** Sends a READ_STATE_UPDATE prepared for many sessions; the nonce only to the requester. */
  sendReadState(update: PreparedReadState, nonce: Nonce | undefined): void {
    if (this.isClosed) return;
    this.send(update.frame(this.encoding, ++this.sequence, nonce));
  }

  sendDispatch(event: string, d: unknown): void {
    if (this.isClosed) return;
    this.send(encodeDispatch(this.encoding, event, d, ++this.sequence));
  }

  private release(code: number): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.identifyTimer);
    clearTimeout(this.heartbeatTimer);
    this.queue.length = 0;
    this.queuedAt.length = 0;
    if (this.userId !== null) this.env.dispatcher.unregister(this);
    this.env.metrics.connections.dec();
    this.env.metrics.closes.labels({ code: closeLabel(code) }).inc();
    this.env.log.debug({ session: this.id, user: this.userId, code }, 'session closed');
  }

  private send(frame: Frame): void {
    if (!this.isClosed) this.socket.send(frame);
  }

  private run(request: Request, receivedAt: number): void {
    switch (request.kind) {
      case 'identify':
        if (this.userId !== null || this.identifying) return this.close(CloseCode.alreadyAuthenticated);
        this.identifying = true;
        clearTimeout(this.identifyTimer);
        this.wait(this.identify(request.token));
        return;
      case 'invalid':
        if (request.op !== Op.heartbeat && this.userId === null) return this.close(CloseCode.notAuthenticated);
        return this.sendError(50035, request.nonce);
      case 'create': {
        if (this.userId === null) return this.close(CloseCode.notAuthenticated);
        const userId = this.userId;
        const { channelId, mentions, mentionEveryone, nonce } = request;
        // Resident states are answered in this turn; a load makes later requests wait.
        const applied = this.env.readStates.createResident(channelId, userId, mentions, mentionEveryone);
        if (applied !== undefined) return this.created(applied, userId, nonce, receivedAt);
        this.wait(this.env.readStates.createMessage(channelId, userId, mentions, mentionEveryone).then((result) => this.created(result, userId, nonce, receivedAt)));
        return;
      }
      case 'ack': {
        if (this.userId === null) return this.close(CloseCode.notAuthenticated);
        const userId = this.userId;
        const { channelId, messageId, nonce } = request;
        const applied = this.env.readStates.ackResident(userId, channelId, messageId);
        if (applied !== undefined) return this.acked(applied, userId, nonce, receivedAt);
        this.wait(this.env.readStates.ack(userId, channelId, messageId).then((result) => this.acked(result, userId, nonce, receivedAt)));
        return;
      }
    }
  }

  /** Holds later requests until `step` settles, then runs them in order. */
  private wait(step: Promise<void>): void {
    this.busy = true;
    // Queued requests run inside next(), so a defect in one of them ends the session here too.
    step
      .then(() => this.next())
      .catch((error: unknown) => {
        this.env.log.error({ err: error, session: this.id }, 'request failed');
        this.close(CloseCode.unknownError);
      });
  }

  private next(): void {
    this.busy = false;
    while (!this.busy && !this.isClosed && this.queue.length > 0) {
      const request = this.queue.shift()!;
      const receivedAt = this.queuedAt.shift()!;
      this.run(request, receivedAt);
    }
  }

  private async identify(token: string | null): Promise<void> {
    const userId = token === null ? null : await this.env.tokens.verify(token);
    if (this.isClosed) return;
    if (userId === null) return this.close(CloseCode.authenticationFailed);
    let states;
    try {
      states = await this.env.readStates.loadUser(userId);
    } catch (error) {
      this.env.log.warn({ err: error, user: userId }, 'loading read states for READY failed');
      return this.close(CloseCode.unknownError);
    }
    if (this.isClosed) return;
    // Changes that landed between the load and now are in the resident states.
    const readStates = states.map((state) => this.env.readStates.viewOf(userId, state.channel_id) ?? state);
    this.userId = userId;
    this.env.dispatcher.register(
      this,
      readStates.map((state) => state.channel_id),
    );
    this.sendDispatch('READY', { v: 1, session_id: this.id, user: { id: userId }, read_states: readStates });
  }

  private created(result: CreateResult | Failure, authorId: string, nonce: Nonce | undefined, receivedAt: number): void {
    if (result.code !== 0) return this.failed(result, nonce);
    this.env.dispatcher.messageCreated(result, authorId, this, nonce);
    this.env.metrics.requestToDispatch.observe((performance.now() - receivedAt) / 1000);
  }

  private acked(result: AckResult, userId: string, nonce: Nonce | undefined, receivedAt: number): void {
    if (result.code !== 0) return this.failed(result, nonce);
    this.env.dispatcher.readStateChanged(userId, result.state, this, nonce);
    this.env.metrics.requestToDispatch.observe((performance.now() - receivedAt) / 1000);
  }

  private failed(failure: Failure, nonce: Nonce | undefined): void {
    if (failure.code === 4000) return this.close(CloseCode.unknownError);
    this.sendError(failure.code, nonce);
  }

  private sendError(code: ErrorCode, nonce: Nonce | undefined): void {
    this.send(encodeError(this.encoding, code, nonce));
  }
}

const KNOWN_CLOSE_CODES = new Set([1000, 1001, 1005, 1006, 1009, ...Object.values(CloseCode)]);

function closeLabel(code: number): string {
  return KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other';
}
