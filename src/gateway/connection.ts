// One WebSocket: HELLO on open, IDENTIFY or RESUME within the timeout, heartbeats, the rate
// limit, then MESSAGE_CREATE / MESSAGE_ACK driving the read states (docs/protocol.md "Session",
// v2 "Reconnect and resume"). What outlives the socket (sequence, resume buffer) is the
// Session it is attached to.
//
// Requests are answered strictly in the order they arrived, even when one waits for a load
// from the store: while a request is in flight the following ones queue behind it; with
// nothing in flight a request starts at once, inside the socket callback. Heartbeats are
// not requests: each is acknowledged on arrival, so a slow load never makes a healthy
// connection look dead.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AckResult, CreateResult, Failure } from '../store/persistent-read-states.js';
import {
  type ClientRequest,
  CLOSE_REASONS,
  CloseCode,
  decodeFrame,
  type Encoding,
  encodeError,
  encodeHeartbeatAck,
  encodeHello,
  encodeInvalidSession,
  encodeReconnect,
  type ErrorCode,
  type Frame,
  type Nonce,
  Op,
} from './codec.js';
import type { Dispatcher } from './dispatch.js';
import type { GatewayMetrics, ResumeRefusal } from './metrics.js';
import type { ReadStateService } from './read-state-service.js';
import type { ResumableSessions } from './resumable-sessions.js';
import type { Session, SessionLink } from './session.js';
import { TokenBucket } from './token-bucket.js';
import type { UserTokens } from './user-tokens.js';

/** docs/protocol.md: IDENTIFY must arrive within 10 s of HELLO. */
export const IDENTIFY_TIMEOUT_MS = 10_000;

/** The socket under a connection (uWS in production, a recorder in unit tests). */
export interface ConnectionSocket {
  send(frame: Frame): void;
  /** Closes with a code (after the frames sent before); the connection is told through socketClosed(). */
  end(code: number, reason: string): void;
}

/** What every connection shares. */
export interface ConnectionEnvironment {
  readStates: ReadStateService;
  dispatcher: Dispatcher;
  sessions: ResumableSessions;
  tokens: UserTokens;
  metrics: GatewayMetrics;
  log: Logger;
  heartbeatIntervalMs: number;
  rateLimit: number;
  rateWindowMs: number;
  identifyTimeoutMs: number;
  /** A cluster node's answer to "who serves this user" (absent on a single node: this one does). */
  routing?: UserRouting;
}

/** Where a user is served: null for this node, else the ws URL of the node that does (docs/protocol.md "Cluster"). */
export interface UserRouting {
  route(userId: string): Promise<string | null>;
}

type Request = Exclude<ClientRequest, { kind: 'heartbeat' } | { kind: 'close' }>;
type ResumeRequest = Extract<ClientRequest, { kind: 'resume' }>;

const OP_OF_KIND = { heartbeat: Op.heartbeat, identify: Op.identify, resume: Op.resume, create: Op.messageCreate, ack: Op.messageAck } as const;

export class Connection implements SessionLink {
  /** Set once IDENTIFY or RESUME succeeded. */
  session: Session | null = null;
  private isClosed = false;
  /** An IDENTIFY or RESUME is being checked. */
  private authenticating = false;
  /** A request is in flight: later ones wait in the queue. */
  private busy = false;
  private readonly queue: Request[] = [];
  private readonly queuedAt: number[] = [];
  private readonly bucket: TokenBucket;
  private identifyTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: ConnectionSocket,
    readonly encoding: Encoding,
    private readonly env: ConnectionEnvironment,
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

  /** Sends RECONNECT (to `url` when given), then closes with `code`: the client comes back by itself. */
  reconnect(code: CloseCode, url?: string): void {
    this.send(encodeReconnect(this.encoding, url));
    this.close(code);
  }

  /** The socket closed, by either side: stop timers, leave the session to its resume window. Idempotent. */
  socketClosed(code: number): void {
    this.release(code);
  }

  send(frame: Frame): void {
    if (!this.isClosed) this.socket.send(frame);
  }

  private release(code: number): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.identifyTimer);
    clearTimeout(this.heartbeatTimer);
    this.queue.length = 0;
    this.queuedAt.length = 0;
    if (this.session !== null) this.env.sessions.detach(this.session, this, code);
    this.env.metrics.connections.dec();
    this.env.metrics.closes.labels({ code: closeLabel(code) }).inc();
    this.env.log.debug({ session: this.session?.id, user: this.session?.userId, code }, 'connection closed');
  }

  private run(request: Request, receivedAt: number): void {
    if (request.kind === 'identify' || request.kind === 'resume') {
      if (this.session !== null || this.authenticating) return this.close(CloseCode.alreadyAuthenticated);
      this.authenticating = true;
      this.wait(request.kind === 'identify' ? this.identify(request.token) : this.resume(request));
      return;
    }
    const session = this.session;
    if (request.kind === 'invalid') {
      if (request.op !== Op.heartbeat && session === null) return this.close(CloseCode.notAuthenticated);
      return this.sendError(50035, request.nonce);
    }
    if (session === null) return this.close(CloseCode.notAuthenticated);
    const userId = session.userId;
    if (request.kind === 'create') {
      const { channelId, mentions, mentionEveryone, nonce } = request;
      // Resident states are answered in this turn; a load makes later requests wait.
      const applied = this.env.readStates.createResident(channelId, userId, mentions, mentionEveryone);
      if (applied !== undefined) return this.created(session, applied, nonce, receivedAt);
      this.wait(this.env.readStates.createMessage(channelId, userId, mentions, mentionEveryone).then((result) => this.created(session, result, nonce, receivedAt)));
    } else {
      const { channelId, messageId, nonce } = request;
      const applied = this.env.readStates.ackResident(userId, channelId, messageId);
      if (applied !== undefined) return this.acked(session, applied, nonce, receivedAt);
      this.wait(this.env.readStates.ack(userId, channelId, messageId).then((result) => this.acked(session, result, nonce, receivedAt)));
    }
  }

  /** Holds later requests until `step` settles, then runs them in order. */
  private wait(step: Promise<void>): void {
    this.busy = true;
    // The answer goes to the session even if this socket closes meanwhile: a RESUME waits for it.
    const session = this.session;
    if (session !== null) {
      const settled = step.then(
        () => {},
        () => {},
      );
      session.settling = settled;
      void settled.then(() => {
        if (session.settling === settled) session.settling = null;
      });
    }
    // Queued requests run inside next(), so a defect in one of them ends the connection here too.
    step
      .then(() => this.next())
      .catch((error: unknown) => {
        this.env.log.error({ err: error, session: this.session?.id }, 'request failed');
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
    clearTimeout(this.identifyTimer);
    const userId = token === null ? null : await this.env.tokens.verify(token);
    if (this.isClosed) return;
    if (userId === null) return this.close(CloseCode.authenticationFailed);
    if (await this.routedElsewhere(userId)) return;
    let states;
    try {
      states = await this.env.readStates.loadUser(userId);
    } catch (error) {
      this.env.log.warn({ err: error, user: userId }, 'loading read states for READY failed');
      return this.close(CloseCode.unknownError);
    }
    if (this.isClosed) return;
    // The user's shard may have moved during the load (a node joined): its sockets were sent
    // on then, and this one, not yet a session, was not among them.
    if (await this.routedElsewhere(userId)) return;
    // Changes that landed between the load and now are in the resident states.
    const readStates = states.map((state) => this.env.readStates.viewOf(userId, state.channel_id) ?? state);
    this.session = this.env.sessions.open(userId, this.encoding, this, readStates);
    this.authenticating = false;
  }

  private async resume({ token, sessionId, seq }: ResumeRequest): Promise<void> {
    const userId = token === null ? null : await this.env.tokens.verify(token);
    if (this.isClosed) return;
    if (userId === null) return this.close(CloseCode.authenticationFailed);
    if (await this.routedElsewhere(userId)) return;
    let session = sessionId === null ? undefined : this.env.sessions.find(sessionId);
    // Answers still in flight for the session belong before the replay's end.
    while (session?.settling != null) await session.settling;
    if (this.isClosed) return;
    // Looked up again: the session may have expired, or ended, while its answers settled.
    session = sessionId === null ? undefined : this.env.sessions.find(sessionId);
    const refusal = sessionId === null || seq === null ? 'malformed' : refusalOf(session, userId, this.encoding, seq);
    if (refusal !== null) {
      this.env.metrics.resumesRefused.labels({ reason: refusal }).inc();
      this.authenticating = false;
      // The socket stays open for IDENTIFY, with a fresh timeout for it.
      this.identifyTimer?.refresh();
      return this.send(encodeInvalidSession(this.encoding));
    }
    clearTimeout(this.identifyTimer);
    this.session = session!;
    this.authenticating = false;
    const replayed = this.env.sessions.attach(this.session, this, seq!);
    this.env.metrics.resumes.inc();
    this.env.log.debug({ session: this.session.id, user: userId, replayed }, 'session resumed');
  }

  /** On a cluster node that does not serve the user: RECONNECT to the one that does, close 4010. */
  private async routedElsewhere(userId: string): Promise<boolean> {
    const url = this.env.routing === undefined ? null : await this.env.routing.route(userId);
    if (url === null || this.isClosed) return this.isClosed;
    this.env.metrics.redirects.inc();
    this.reconnect(CloseCode.movedToAnotherNode, url);
    return true;
  }

  private created(session: Session, result: CreateResult | Failure, nonce: Nonce | undefined, receivedAt: number): void {
    if (result.code !== 0) return this.failed(result, nonce);
    this.env.dispatcher.messageCreated(result, session.userId, session, nonce);
    this.env.metrics.requestToDispatch.observe((performance.now() - receivedAt) / 1000);
  }

  private acked(session: Session, result: AckResult, nonce: Nonce | undefined, receivedAt: number): void {
    if (result.code !== 0) return this.failed(result, nonce);
    this.env.dispatcher.readStateChanged(session.userId, result.state, session, nonce);
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

/** Why a RESUME cannot be honoured, or null when it can. */
function refusalOf(session: Session | undefined, userId: string, encoding: Encoding, seq: number): ResumeRefusal | null {
  if (session === undefined) return 'unknown_session';
  if (session.userId !== userId) return 'wrong_user';
  if (session.encoding !== encoding) return 'encoding';
  if (!session.covers(seq)) return 'seq';
  return null;
}

const KNOWN_CLOSE_CODES = new Set([1000, 1001, 1005, 1006, 1009, ...Object.values(CloseCode)]);

function closeLabel(code: number): string {
  return KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other';
}
