// End-to-end helpers for the gateway: runs the compiled gateway (dist/src/main.js, as in
// production) as a child process on a free port against a real Cassandra node, and talks
// to it over real sockets (the typed client) and HTTP (AdminApi).

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import type { Encoding, GatewayClient } from '../../src/client/gateway-client.js';
import { connectNode } from '../../src/client/node-socket.js';
import { UserTokens } from '../../src/gateway/user-tokens.js';
import { DEV_CONTACT_POINTS, waitUntil } from './cassandra-nodes.js';
import { freePort } from './free-port.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/src/main.js');

export const E2E_JWT_SECRET = 'e2e-jwt-secret-with-enough-length';
export const E2E_ADMIN_TOKEN = 'e2e-admin-token-with-enough-length';
export const tokens = new UserTokens(E2E_JWT_SECRET);

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Compiles the gateway into dist/ (as `npm run build` does) when dist/ is missing or older
 * than src/, so tests never run stale code. Only src/main.ts and what it imports, and the
 * demo page's browser code it serves from dist/, are compiled: work in progress elsewhere
 * in the tree cannot block the gateway's tests.
 */
export async function ensureBuilt(): Promise<void> {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestSource(join(ROOT, 'src'))) return;
  const dir = await mkdtemp(join(tmpdir(), 'gateway-build-'));
  const config = join(dir, 'tsconfig.json');
  await writeFile(config, JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), compilerOptions: { outDir: join(ROOT, 'dist'), rootDir: ROOT, typeRoots: [join(ROOT, 'node_modules/@types')] }, files: [join(ROOT, 'src/main.ts'), join(ROOT, 'src/demo/browser/demo-page.ts')], include: [] }));
  try {
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { timeout: 180_000 });
  } catch (error) {
    throw new Error(`building src/ failed:\n${(error as { stdout?: string }).stdout ?? ''}`, { cause: error });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface GatewayProcess {
  port: number;
  httpUrl: string;
  wsUrl: string;
  child: ChildProcess;
  /** stdout and stderr lines so far. */
  output: string[];
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** Runs a full garbage collection in the gateway (started with `inspect`). */
  collectGarbage(): Promise<void>;
}

export interface StartOptions {
  /** Opens the V8 inspector on a free loopback port, so a test can force a full GC. */
  inspect?: boolean;
}

/** Sends one method call over the inspector protocol and waits for its answer. */
function inspectorCall(url: string, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method })));
    ws.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { id?: number }).id !== 1) return;
      ws.close();
      resolve();
    });
  });
}

/** Starts the compiled gateway with `env` on top of the e2e defaults; resolves once /readyz says 200. */
export async function startGateway(env: Record<string, string>, options: StartOptions = {}): Promise<GatewayProcess> {
  await ensureBuilt();
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, [...(options.inspect === true ? ['--inspect=127.0.0.1:0'] : []), MAIN], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: String(port),
        CASSANDRA_CONTACT_POINTS: DEV_CONTACT_POINTS.join(','),
        GATEWAY_JWT_SECRET: E2E_JWT_SECRET,
        GATEWAY_ADMIN_TOKEN: E2E_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean)));
    child.stderr.on('data', (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const httpUrl = `http://127.0.0.1:${port}`;
    try {
      await waitUntil(
        'the gateway is ready',
        async () => {
          if (gone) throw new Error(`gateway exited:\n${output.join('\n')}`);
          try {
            return (await fetch(`${httpUrl}/readyz`)).status === 200;
          } catch {
            return false;
          }
        },
        90_000,
        200,
      );
    } catch (error) {
      child.kill('SIGKILL');
      if (attempt < 3 && output.some((line) => line.includes('cannot listen'))) continue;
      throw error;
    }
    return {
      port,
      httpUrl,
      wsUrl: `ws://127.0.0.1:${port}/gateway`,
      child,
      output,
      exited,
      stop: async (signal = 'SIGTERM') => {
        if (!gone) child.kill(signal);
        return exited;
      },
      collectGarbage: async () => {
        const url = output.map((line) => /Debugger listening on (ws:\S+)/.exec(line)?.[1]).find((found) => found !== undefined);
        if (url === undefined) throw new Error('start the gateway with { inspect: true } to collect garbage');
        await inspectorCall(url, 'HeapProfiler.collectGarbage');
      },
    };
  }
}

/** A random snowflake above 2^53 (ids there must round-trip exactly), below 2^63. */
export function randomSnowflake(): string {
  const value = (randomBytes(8).readBigUInt64BE() & ((1n << 63n) - 1n)) | (1n << 60n);
  return value.toString();
}

export function userToken(userId: string, ttlSeconds = 3600): Promise<string> {
  return tokens.sign(userId, ttlSeconds);
}

/** A connected, identified client that keeps what it receives (tests read `received`). */
export async function connectUser(gateway: GatewayProcess, userId: string, encoding: Encoding = 'json'): Promise<GatewayClient> {
  const client = await connectNode(gateway.wsUrl, { encoding, keepReceived: true });
  await client.identify(await userToken(userId));
  return client;
}

export interface HttpResult {
  status: number;
  body: unknown;
}

/** The /v1 admin API. */
export class AdminApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token = E2E_ADMIN_TOKEN,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<HttpResult> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  }

  async join(channelId: string, userId: string): Promise<void> {
    const result = await this.call('PUT', `/v1/channels/${channelId}/members/${userId}`);
    if (result.status !== 204) throw new Error(`join failed: ${result.status} ${JSON.stringify(result.body)}`);
  }

  leave(channelId: string, userId: string): Promise<HttpResult> {
    return this.call('DELETE', `/v1/channels/${channelId}/members/${userId}`);
  }

  /** Posts a message; resolves with its id. */
  async post(channelId: string, authorId: string, extra: { mentions?: string[]; mention_everyone?: boolean } = {}): Promise<string> {
    const result = await this.call('POST', `/v1/channels/${channelId}/messages`, { author_id: authorId, ...extra });
    if (result.status !== 200) throw new Error(`post failed: ${result.status} ${JSON.stringify(result.body)}`);
    return (result.body as { message_id: string }).message_id;
  }

  async readStates(userId: string): Promise<unknown[]> {
    const result = await this.call('GET', `/v1/users/${userId}/read-states`);
    if (result.status !== 200) throw new Error(`read-states failed: ${result.status}`);
    return result.body as unknown[];
  }
}

/** Sorts read states by channel, for comparisons. */
export function byChannel<T extends { channel_id: string }>(states: T[]): T[] {
  return [...states].sort((a, b) => (a.channel_id < b.channel_id ? -1 : a.channel_id > b.channel_id ? 1 : 0));
}

/** A metric's value from /metrics (the first sample of that name). */
export async function metricValue(gateway: GatewayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  const match = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  if (match === null) throw new Error(`metric ${name} not found`);
  return Number(match[1]);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RawFrame {
  data: Buffer;
  binary: boolean;
}

/** A plain `ws` socket recording frames as they arrive, for frame-level checks. */
export class RawSocket {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | undefined;
  readonly opened: Promise<void>;
  /** HTTP status when the server refused the upgrade. */
  readonly refused: Promise<number>;
  private readonly ws: WebSocket;

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.ws.on('message', (data: Buffer, binary: boolean) => this.frames.push({ data, binary }));
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString() });
      }),
    );
    this.opened = new Promise((resolve) => this.ws.on('open', () => resolve()));
    this.refused = new Promise((resolve) => this.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  }

  /** Sends text (a string) or binary (bytes) as one frame. */
  send(data: string | Uint8Array, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** Frames decoded as JSON (json sessions). */
  json(): Array<{ op: number; d: unknown; s?: number; t?: string }> {
    return this.frames.map((frame) => JSON.parse(frame.data.toString('utf8')) as { op: number; d: unknown; s?: number; t?: string });
  }

  /** Resolves once `count` frames arrived. */
  async waitFrames(count: number, timeoutMs = 5000): Promise<RawFrame[]> {
    await waitUntil(
      `${count} frames arrived`,
      () => {
        if (this.frames.length < count && this.closeCode !== undefined) throw new Error(`closed with ${this.closeCode} after ${this.frames.length} of ${count} frames`);
        return this.frames.length >= count;
      },
      timeoutMs,
      5,
    );
    return this.frames;
  }

  /** Stops reading from the socket: the server's sends pile up (a slow consumer). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  close(): void {
    this.ws.close();
  }
}
