// The HTTP side of the port (docs/protocol.md "HTTP API", docs/openapi.json): the admin API
// under /v1 (bearer token), /healthz, /readyz and /metrics. Membership changes and messages
// posted here are dispatched to the online sessions like their gateway counterparts.
//
// uWS rules followed here: everything read from the request is read before the first
// await; a response not ended synchronously has an onAborted handler, and nothing is
// written to it after an abort; writes after an await are corked.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { AdminAnswer, AdminOperations, MessageBody } from './admin-operations.js';
import { canonicalSnowflake, isRecord } from './codec.js';
import type { GatewayMetrics } from './metrics.js';
import type { ReadStateService } from './read-state-service.js';

/** Request bodies above this are refused with 413 (a message body is a few hundred bytes). */
export const MAX_BODY_BYTES = 64 * 1024;

const STATUS: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

const JSON_TYPE = 'application/json';
const INVALID_BODY = { code: 50035, message: 'Invalid Form Body' };

export interface HttpApiOptions {
  readStates: ReadStateService;
  operations: AdminOperations;
  /** A cluster node's GET /v1/cluster answer (absent on a single node: 404). */
  cluster?: () => unknown;
  metrics: GatewayMetrics;
  adminToken: string;
  log: Logger;
}

/** One response, ended at most once and never after the client went away. */
class Reply {
  private done = false;
  private abortListener: (() => void) | undefined;

  constructor(private readonly res: HttpResponse) {
    // uWS keeps one abort handler per response: this one, which passes the news on.
    res.onAborted(() => {
      this.done = true;
      this.abortListener?.();
    });
  }

  onAborted(listener: () => void): void {
    this.abortListener = listener;
  }

  get aborted(): boolean {
    return this.done;
  }

  json(status: number, body: unknown): void {
    this.send(status, JSON_TYPE, JSON.stringify(body));
  }

  answer({ status, body }: AdminAnswer): void {
    if (body === null) this.send(status, null, '');
    else this.json(status, body);
  }

  send(status: number, contentType: string | null, body: string): void {
    if (this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(STATUS[status]);
      if (contentType !== null) this.res.writeHeader('content-type', contentType);
      this.res.end(body);
    });
  }
}

/** Methods of the routes below; uWS names DELETE `del`. */
export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** A route the API serves: method and uWS path pattern (`:name` is one path segment). */
export interface HttpRoute {
  readonly id: string;
  readonly method: HttpMethod;
  readonly path: string;
  /** Needs `Authorization: Bearer $GATEWAY_ADMIN_TOKEN` (else 401). */
  readonly admin: boolean;
}

/**
 * Every route mountHttpApi serves, in mounting order. Exported so that docs/openapi.json
 * can be checked against what is really served (test/e2e/openapi.test.ts). Anything else
 * falls through to a 404 (under /v1/, after the token check).
 */
export const HTTP_ROUTES = [
  { id: 'healthz', method: 'GET', path: '/healthz', admin: false },
  { id: 'readyz', method: 'GET', path: '/readyz', admin: false },
  { id: 'metrics', method: 'GET', path: '/metrics', admin: false },
  { id: 'join', method: 'PUT', path: '/v1/channels/:channel_id/members/:user_id', admin: true },
  { id: 'leave', method: 'DELETE', path: '/v1/channels/:channel_id/members/:user_id', admin: true },
  { id: 'postMessage', method: 'POST', path: '/v1/channels/:channel_id/messages', admin: true },
  { id: 'readStates', method: 'GET', path: '/v1/users/:user_id/read-states', admin: true },
  { id: 'cluster', method: 'GET', path: '/v1/cluster', admin: true },
] as const satisfies readonly HttpRoute[];

type RouteId = (typeof HTTP_ROUTES)[number]['id'];
type Handler = (reply: Reply, req: HttpRequest, res: HttpResponse) => Promise<void> | void;
type UwsHandler = (res: HttpResponse, req: HttpRequest) => void;

export function mountHttpApi(app: TemplatedApp, options: HttpApiOptions): void {
  const { readStates, operations, cluster, metrics, log } = options;
  const adminDigest = digest(options.adminToken);

  /** Bearer-token check in constant time (digests make the lengths equal). */
  const authorized = (req: HttpRequest): boolean => {
    const header = req.getHeader('authorization');
    const match = /^Bearer (.+)$/.exec(header);
    return match !== null && timingSafeEqual(digest(match[1]), adminDigest);
  };

  /** Runs a handler: 401 without the token on admin routes, 500 when the work fails unexpectedly. */
  const serve =
    (handle: Handler, admin: boolean): UwsHandler =>
    (res, req) => {
      const reply = new Reply(res);
      if (admin && !authorized(req)) return reply.json(401, { code: 0, message: '401: Unauthorized' });
      try {
        const pending = handle(reply, req, res);
        if (pending !== undefined) {
          pending.catch((error: unknown) => {
            log.error({ err: error }, 'http request failed');
            reply.json(500, { code: 4000, message: 'Internal error' });
          });
        }
      } catch (error) {
        log.error({ err: error }, 'http request failed');
        reply.json(500, { code: 4000, message: 'Internal error' });
      }
    };

  // A Record over the route ids: the compiler insists on one handler per route in the table.
  const handlers: Record<RouteId, Handler> = {
    healthz: (reply) => reply.json(200, { ok: true }),

    readyz: (reply) => {
      const ready = readStates.ready;
      reply.json(ready ? 200 : 503, { ready });
    },

    metrics: (reply) => {
      metrics.registry.metrics().then(
        (text) => reply.send(200, metrics.registry.contentType, text),
        (error: unknown) => {
          log.error({ err: error }, 'collecting metrics failed');
          reply.json(500, { code: 4000, message: 'Internal error' });
        },
      );
    },

    join: async (reply, req) => {
      const channelId = canonicalSnowflake(req.getParameter(0));
      const userId = canonicalSnowflake(req.getParameter(1));
      if (channelId === null || userId === null) return reply.json(400, INVALID_BODY);
      reply.answer(await operations.join(channelId, userId));
    },

    leave: async (reply, req) => {
      const channelId = canonicalSnowflake(req.getParameter(0));
      const userId = canonicalSnowflake(req.getParameter(1));
      if (channelId === null || userId === null) return reply.json(400, INVALID_BODY);
      reply.answer(await operations.leave(channelId, userId));
    },

    postMessage: async (reply, req, res) => {
      const channelId = canonicalSnowflake(req.getParameter(0));
      const body = await readBody(res, reply);
      if (body === undefined) return;
      if (channelId === null) return reply.json(400, INVALID_BODY);
      const message = parseMessageBody(body);
      if (message === null) return reply.json(400, INVALID_BODY);
      reply.answer(await operations.postMessage(channelId, message));
    },

    readStates: async (reply, req) => {
      const userId = canonicalSnowflake(req.getParameter(0));
      if (userId === null) return reply.json(400, INVALID_BODY);
      reply.answer(await operations.readStates(userId));
    },

    cluster: (reply) => {
      if (cluster === undefined) return reply.json(404, { code: 0, message: '404: Not Found (not a cluster node: GATEWAY_NATS_URL is not set)' });
      reply.json(200, cluster());
    },
  };

  for (const route of HTTP_ROUTES) {
    const handler = serve(handlers[route.id], route.admin);
    switch (route.method) {
      case 'GET':
        app.get(route.path, handler);
        break;
      case 'PUT':
        app.put(route.path, handler);
        break;
      case 'POST':
        app.post(route.path, handler);
        break;
      case 'DELETE':
        app.del(route.path, handler);
        break;
    }
  }

  const notFound: Handler = (reply) => reply.json(404, { code: 0, message: '404: Not Found' });
  app.any('/v1/*', serve(notFound, true));
  app.any('/*', serve(notFound, false));
}


function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The whole body as text, or undefined once answered (too large, not UTF-8) or aborted. */
function readBody(res: HttpResponse, reply: Reply): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (reply.aborted) return resolve(undefined);
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) {
        reply.json(413, { code: 50035, message: 'Request body too large' });
        return resolve(undefined);
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (!isLast) return;
      try {
        resolve(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      } catch {
        reply.json(400, INVALID_BODY);
        resolve(undefined);
      }
    });
    // An abort before the last chunk settles the promise too, so no handler waits forever.
    reply.onAborted(() => resolve(undefined));
  });
}


function parseMessageBody(text: string): MessageBody | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(body)) return null;
  const authorId = canonicalSnowflake(body.author_id);
  if (authorId === null) return null;
  const mentions: string[] = [];
  if (body.mentions !== undefined && body.mentions !== null) {
    if (!Array.isArray(body.mentions)) return null;
    for (const mention of body.mentions as unknown[]) {
      const id = canonicalSnowflake(mention);
      if (id === null) return null;
      mentions.push(id);
    }
  }
  const everyone = body.mention_everyone;
  if (everyone !== undefined && everyone !== null && typeof everyone !== 'boolean') return null;
  return { authorId, mentions, mentionEveryone: everyone === true };
}
