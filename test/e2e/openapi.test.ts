// docs/openapi.json against the running gateway: the document lists exactly the routes
// src/gateway/http-api.ts mounts (HTTP_ROUTES), every documented operation answers a valid
// and an invalid request with a documented status, content type and body, and nothing
// undocumented is served on the documented paths.
//
// The body check is a small JSON Schema subset (the keywords openapi.json uses): enough to
// catch a field renamed on one side only, without a validator dependency.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_ROUTES } from '../../src/gateway/http-api.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { startClusterNode } from '../support/cluster-harness.js';
import { AdminApi, E2E_ADMIN_TOKEN, type GatewayProcess, randomSnowflake, startGateway } from '../support/gateway-harness.js';

type Json = Record<string, unknown>;

interface Operation {
  operationId: string;
  security?: Array<Record<string, string[]>>;
  requestBody?: Json;
  responses: Record<string, Json>;
  parameters?: Json[];
}

const DOC = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Json>;
  components: Json;
};
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

/** Follows a local `$ref` ("#/components/..."); anything else is returned as it is. */
function resolve(node: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are expected, got ${ref}`);
  let target: unknown = DOC;
  for (const part of ref.slice(2).split('/')) target = (target as Json)[part];
  if (target === undefined) throw new Error(`dangling $ref ${ref}`);
  return resolve(target as Json);
}

interface Documented {
  method: string;
  path: string;
  operation: Operation;
  parameters: Json[];
}

const OPERATIONS: Documented[] = [];
for (const [path, item] of Object.entries(DOC.paths)) {
  const shared = ((item.parameters as Json[] | undefined) ?? []).map(resolve);
  for (const method of METHODS) {
    const operation = item[method] as Operation | undefined;
    if (operation === undefined) continue;
    OPERATIONS.push({ method: method.toUpperCase(), path, operation, parameters: [...shared, ...(operation.parameters ?? []).map(resolve)] });
  }
}

function needsToken(operation: Operation): boolean {
  return (operation.security ?? []).some((requirement) => 'adminToken' in requirement);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'string':
    case 'boolean':
      return typeof value === type;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      throw new Error(`schema type ${type} is not handled here`);
  }
}

/** Problems of `value` against `schema` (the subset: $ref, type, const, oneOf, pattern, minimum, maximum, items, required, properties). */
function validate(value: unknown, schemaNode: Json, at = '$'): string[] {
  const schema = resolve(schemaNode);
  const problems: string[] = [];
  if ('const' in schema && value !== schema.const) problems.push(`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.oneOf)) {
    const matches = (schema.oneOf as Json[]).filter((option) => validate(value, option, at).length === 0).length;
    if (matches !== 1) problems.push(`${at}: ${JSON.stringify(value)} matches ${matches} of oneOf`);
  }
  if (schema.type !== undefined) {
    const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
    if (!types.some((type) => hasType(value, type))) return [...problems, `${at}: ${JSON.stringify(value)} is not of type ${types.join('|')}`];
  }
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
    problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${at}: ${value} < ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${at}: ${value} > ${schema.maximum}`);
  }
  if (Array.isArray(value) && isObject(schema.items)) {
    value.forEach((item, i) => problems.push(...validate(item, schema.items as Json, `${at}[${i}]`)));
  }
  if (isObject(value)) {
    for (const name of (schema.required as string[] | undefined) ?? []) if (!(name in value)) problems.push(`${at}: missing ${name}`);
    const properties = (schema.properties as Record<string, Json> | undefined) ?? {};
    for (const [name, property] of Object.entries(properties)) if (name in value) problems.push(...validate(value[name], property, `${at}.${name}`));
  }
  return problems;
}

const keyspace = uniqueKeyspace('e2e_openapi');
let gateway: GatewayProcess;
let api: AdminApi;
/** "operationId status" for every answer checked, to find documented statuses no request produced. */
const seen = new Set<string>();

beforeAll(async () => {
  gateway = await startGateway({ CASSANDRA_KEYSPACE: keyspace });
  api = new AdminApi(gateway.httpUrl);
});

afterAll(async () => {
  expect(await gateway?.stop()).toBe(0);
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

interface Call {
  /** Path parameters by name (defaults: fresh ids). */
  params?: Record<string, string>;
  body?: string;
  /** Header value; null sends no Authorization header. Default: the admin token when the operation needs it. */
  authorization?: string | null;
  /** Another gateway to ask (default: the single node every scenario uses). */
  gateway?: GatewayProcess;
}

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
    return value;
  });
}

/** Sends `call` to the documented operation and checks the answer against the document; resolves with the status. */
async function send(documented: Documented, call: Call = {}): Promise<number> {
  const { method, path, operation } = documented;
  const params: Record<string, string> = {};
  for (const parameter of documented.parameters) if (parameter.in === 'path') params[parameter.name as string] = randomSnowflake();
  Object.assign(params, call.params);
  const authorization = call.authorization === undefined ? (needsToken(operation) ? `Bearer ${E2E_ADMIN_TOKEN}` : null) : call.authorization;
  const headers: Record<string, string> = {};
  if (authorization !== null) headers.authorization = authorization;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${(call.gateway ?? gateway).httpUrl}${fill(path, params)}`, { method, headers, body: call.body });
  const label = `${method} ${path} -> ${response.status}`;

  const documentedResponse = operation.responses[String(response.status)];
  expect(documentedResponse, `${label}: status not documented`).toBeDefined();
  seen.add(`${operation.operationId} ${response.status}`);
  const content = resolve(documentedResponse).content as Record<string, Json> | undefined;
  const text = await response.text();
  if (content === undefined) {
    expect(text, `${label}: documented without a body`).toBe('');
    return response.status;
  }
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim();
  expect(Object.keys(content), `${label}: content type ${mediaType}`).toContain(mediaType);
  const schema = content[mediaType].schema as Json;
  const body: unknown = mediaType === 'application/json' ? JSON.parse(text) : text;
  expect(validate(body, schema), `${label}: body ${text.slice(0, 200)}`).toEqual([]);
  return response.status;
}

function operation(operationId: string): Documented {
  const found = OPERATIONS.find((documented) => documented.operation.operationId === operationId);
  if (found === undefined) throw new Error(`openapi.json has no operation ${operationId}`);
  return found;
}

/** A documented request body schema, to check that the test's own bodies mean what they claim. */
function requestSchema(documented: Documented): Json {
  const body = resolve(documented.operation.requestBody as Json);
  return (body.content as Record<string, Json>)['application/json'].schema as Json;
}

/**
 * Per operation: a valid request (answered 2xx) and the invalid ones particular to it. Every
 * documented operation needs an entry; the no-token and malformed-id cases are generic.
 */
const SCENARIOS: Record<string, { valid(documented: Documented): Promise<void>; invalid?(documented: Documented): Promise<void> }> = {
  addMember: {
    async valid(documented) {
      expect(await send(documented)).toBe(204);
    },
  },
  removeMember: {
    async valid(documented) {
      const [channel, user] = [randomSnowflake(), randomSnowflake()];
      await api.join(channel, user);
      expect(await send(documented, { params: { channel_id: channel, user_id: user } })).toBe(204);
    },
    async invalid(documented) {
      expect(await send(documented, { params: { channel_id: randomSnowflake() } })).toBe(404);
    },
  },
  postMessage: {
    async valid(documented) {
      const [channel, author, member] = [randomSnowflake(), randomSnowflake(), randomSnowflake()];
      await api.join(channel, author);
      await api.join(channel, member);
      const body = { author_id: author, mentions: [member], mention_everyone: false };
      expect(validate(body, requestSchema(documented))).toEqual([]);
      expect(await send(documented, { params: { channel_id: channel }, body: JSON.stringify(body) })).toBe(200);
    },
    async invalid(documented) {
      const [channel, member] = [randomSnowflake(), randomSnowflake()];
      await api.join(channel, member);
      const params = { channel_id: channel };
      for (const body of [{ author_id: 5 }, { author_id: member, mentions: 'x' }, {}]) {
        expect(validate(body, requestSchema(documented)), JSON.stringify(body)).not.toEqual([]);
        expect(await send(documented, { params, body: JSON.stringify(body) })).toBe(400);
      }
      expect(await send(documented, { params, body: 'not json' })).toBe(400);
      expect(await send(documented, { params, body: JSON.stringify({ author_id: randomSnowflake() }) })).toBe(403);
      expect(await send(documented, { body: JSON.stringify({ author_id: member }) })).toBe(404);
      expect(await send(documented, { params, body: JSON.stringify({ author_id: member, pad: 'x'.repeat(100_000) }) })).toBe(413);
    },
  },
  listReadStates: {
    async valid(documented) {
      const [channel, user] = [randomSnowflake(), randomSnowflake()];
      await api.join(channel, user);
      expect(await send(documented, { params: { user_id: user } })).toBe(200);
      expect(await send(documented)).toBe(200);
    },
  },
  cluster: {
    async valid(documented) {
      // A one-node cluster of its own (NATS from `npm test`): the single node answers 404.
      const clusterKeyspace = uniqueKeyspace('openapi_cluster');
      const node = await startClusterNode(1, clusterKeyspace);
      try {
        expect(await send(documented, { gateway: node })).toBe(200);
      } finally {
        await node.stop();
        await dropKeyspace(DEV_CONTACT_POINTS, clusterKeyspace);
      }
    },
    async invalid(documented) {
      expect(await send(documented)).toBe(404);
    },
  },
  health: {
    async valid(documented) {
      expect(await send(documented)).toBe(200);
    },
  },
  ready: {
    async valid(documented) {
      expect(await send(documented)).toBe(200);
    },
  },
  metrics: {
    async valid(documented) {
      expect(await send(documented)).toBe(200);
    },
  },
};

/** Documented statuses no request here can produce: store outages and defects. */
const UNPROVOKED = new Set(['500', '503']);
const MALFORMED_IDS = ['abc', '-1', '1.5', '1'.repeat(21)];

describe('docs/openapi.json', () => {
  it('documents exactly the routes the HTTP API mounts, with the admin token where it is required', () => {
    const documented = OPERATIONS.map(({ method, path, operation }) => `${method} ${path}${needsToken(operation) ? ' (admin)' : ''}`).sort();
    const served = HTTP_ROUTES.map(({ method, path, admin }) => `${method} ${path.replace(/:(\w+)/g, '{$1}')}${admin ? ' (admin)' : ''}`).sort();
    expect(documented).toEqual(served);
  });

  for (const documented of OPERATIONS) {
    const { method, path, operation } = documented;
    describe(`${method} ${path}`, () => {
      it('answers a valid request with a documented success', async () => {
        const scenario = SCENARIOS[operation.operationId];
        expect(scenario, `no scenario for operation ${operation.operationId}: add one`).toBeDefined();
        await scenario.valid(documented);
      });

      it('answers invalid requests with documented statuses', async () => {
        // Without the token: 401 on admin routes; open routes answer as usual.
        for (const authorization of [null, 'Bearer wrong-token']) {
          const status = await send(documented, { authorization, body: method === 'POST' ? '{}' : undefined });
          if (needsToken(operation)) expect(status).toBe(401);
          else expect(status).toBe(200);
        }
        for (const parameter of documented.parameters.filter((p) => p.in === 'path')) {
          for (const bad of MALFORMED_IDS) {
            expect(validate(bad, parameter.schema as Json), `${bad} should break the ${parameter.name as string} schema`).not.toEqual([]);
            const body = method === 'POST' ? JSON.stringify({ author_id: randomSnowflake() }) : undefined;
            expect(await send(documented, { params: { [parameter.name as string]: bad }, body })).toBe(400);
          }
        }
        await SCENARIOS[operation.operationId]?.invalid?.(documented);
      });
    });
  }

  it('serves no undocumented method on the documented paths (the catch-all 404)', async () => {
    for (const [path, item] of Object.entries(DOC.paths)) {
      const params: Record<string, string> = {};
      for (const name of path.matchAll(/\{(\w+)\}/g)) params[name[1]] = randomSnowflake();
      for (const method of ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']) {
        if (item[method.toLowerCase()] !== undefined) continue;
        const response = await fetch(`${gateway.httpUrl}${fill(path, params)}`, { method, headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}` } });
        // The catch-all's body, not a route's own 404 (an unknown channel is 10003).
        expect({ status: response.status, body: await response.json() }, `${method} ${path}`).toEqual({ status: 404, body: { code: 0, message: '404: Not Found' } });
      }
    }
  });

  it('produced every documented status it can provoke', () => {
    const missing: string[] = [];
    for (const { operation } of OPERATIONS) {
      for (const status of Object.keys(operation.responses)) {
        if (!UNPROVOKED.has(status) && !seen.has(`${operation.operationId} ${status}`)) missing.push(`${operation.operationId} ${status}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
