// Node-to-node requests over NATS request/reply: each node answers on `<prefix>.node.<id>`.
// A request names its kind (`t`); a node that no longer owns what a request is about
// answers `{moved: true}`, and the caller asks again once its shard map has caught up.
// Payloads are MessagePack (msgpackr), which carries the channel windows' byte arrays as is.

import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { Packr } from 'msgpackr';
import type { Logger } from 'pino';

const packr = new Packr({ useRecords: false, variableMapSize: true });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/** The answer of a node that does not own what it was asked about (or is gone). */
export interface Moved {
  moved: true;
}

export const MOVED: Moved = { moved: true };

export function isMoved(value: unknown): value is Moved {
  return typeof value === 'object' && value !== null && (value as Partial<Moved>).moved === true;
}

export type RequestHandler = (request: { t: string } & Record<string, unknown>) => Promise<unknown> | unknown;

const REQUEST_TIMEOUT_MS = 5000;
const RETRY_MS = 100;
/** How long a caller keeps asking while shards move (a lost node leaves the map within GATEWAY_NODE_EXPIRE_MS). */
const MOVED_DEADLINE_MS = 15_000;

export class NodeRequests {
  private subscription: Subscription | undefined;
  private readonly handlers = new Map<string, RequestHandler>();
  readonly counters = { sent: 0, received: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly selfId: number,
    private readonly log: Logger,
  ) {}

  handle(kind: string, handler: RequestHandler): void {
    this.handlers.set(kind, handler);
  }

  start(): void {
    this.subscription = this.nc.subscribe(this.subjectOf(this.selfId), {
      callback: (error, message) => {
        if (error === null) void this.answer(message);
      },
    });
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }

  /**
   * Asks node `target()` (looked up again on every attempt) and returns its answer; retries
   * while the answer is MOVED or nobody answers, until MOVED_DEADLINE_MS. MOVED when there is
   * no target (no shard map) or the deadline passed.
   */
  async ask<T>(target: () => Promise<number | undefined>, request: { t: string } & Record<string, unknown>): Promise<T | Moved> {
    const deadline = Date.now() + MOVED_DEADLINE_MS;
    const payload = encode(request);
    for (;;) {
      const node = await target();
      if (node === undefined) return MOVED;
      let answer: unknown = MOVED;
      try {
        this.counters.sent++;
        const reply = await this.nc.request(this.subjectOf(node), payload, { timeout: REQUEST_TIMEOUT_MS });
        answer = decode(reply.data);
      } catch (error) {
        // No responders: the node is gone and the map has not caught up yet.
        this.log.debug({ err: error, node, kind: request.t }, 'node request failed; retrying');
      }
      if (!isMoved(answer) || Date.now() > deadline) return answer as T | Moved;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  private async answer(message: Msg): Promise<void> {
    this.counters.received++;
    let answer: unknown;
    try {
      const request = decode<{ t: string } & Record<string, unknown>>(message.data);
      const handler = this.handlers.get(request?.t);
      answer = handler === undefined ? { error: `unknown request ${String(request?.t)}` } : await handler(request);
    } catch (error) {
      this.log.error({ err: error }, 'answering a node request failed');
      answer = { error: 'internal' };
    }
    message.respond(encode(answer));
  }

  private subjectOf(node: number): string {
    return `${this.prefix}.node.${node}`;
  }
}
