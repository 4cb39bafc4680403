// Gateway vs raw uWS echo, on loopback, with the load generated in this process and each
// server in a process of its own:
//   npm run bench:gateway -- [--json] [--rate 4000] [--seconds 4] [--rounds 3] [--connections 40] [--fanout 10]
//
// The same client (the `ws` package, JSON text frames, one nonce per request) drives:
// - uws-echo: a bare uWS server sending each frame back (the floor: socket + framing cost);
// - gateway-ack: MESSAGE_ACK round trips (request -> READ_STATE_UPDATE with the nonce);
// - gateway-create-fanout: MESSAGE_CREATE in channels of `fanout` online members, timed to
//   the author's READ_STATE_UPDATE; every member's session gets its update too.
// Each runs at a fixed rate and then flat out (closed loop, 32 requests in flight per
// connection) for the top throughput. At a fixed rate the pacing is open loop: requests
// leave on schedule whether or not answers came back, so a server stall shows as late
// answers and queueing. Latency runs from the moment a frame is handed to the socket, not
// from its scheduled time: Node's timers fire 1-2 ms late, which would otherwise put the
// client's own timer lag into every figure, echo's included. The runs interleave over
// several rounds; one JSON line per implementation and load (medians over the rounds),
// then the ratios. Both servers run with one GC thread, as `npm start` runs the gateway.
// The gateway runs compiled (dist/src/main.js) on the local Cassandra node, with its own
// keyspace (dropped afterwards).

import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { UserTokens } from '../../src/gateway/user-tokens.js';
import { identifiedSocket, openSocket } from './bench-sockets.js';
import { BENCH_ADMIN_TOKEN, BENCH_JWT_SECRET, dropBenchKeyspace, startBenchGateway, startUwsPeer, stopServer } from './bench-servers.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const JSON_OUTPUT = flag('json');
const RATE = option('rate', 4000);
const SECONDS = option('seconds', 4);
const CONNECTIONS = option('connections', 40);
const FANOUT = option('fanout', 10);
const ROUNDS = option('rounds', 3);
const MAX_IN_FLIGHT = 32;
const WARMUP_SECONDS = 1;

interface Result {
  impl: string;
  load: 'fixed' | 'max';
  rate: number | null;
  connections: number;
  msgsPerSec: number;
  p50us: number;
  p99us: number;
  p999us: number;
  deliveredPerSec?: number;
}


// ---- Load -----------------------------------------------------------------------------------

/** One client connection: sends JSON requests with nonces, times the answer carrying each nonce. */
class LoadConnection {
  private readonly sentAt = new Map<number, number>();
  private nextNonce = 1;
  inFlight = 0;
  delivered = 0;
  /** Told the latency of each answered request. */
  onAnswer: (latencyMs: number) => void = () => {};

  constructor(
    private readonly ws: WebSocket,
    private readonly request: (nonce: number) => string,
  ) {
    ws.on('message', (data: Buffer) => {
      const payload = JSON.parse(data.toString()) as { op: number; d: { nonce?: number } | null };
      this.delivered++;
      const nonce = payload.d?.nonce;
      if (nonce === undefined) return;
      const sent = this.sentAt.get(nonce);
      if (sent === undefined) return;
      this.sentAt.delete(nonce);
      this.inFlight--;
      this.onAnswer(performance.now() - sent);
    });
  }

  /** Sends one request, timed from now. */
  send(): void {
    const nonce = this.nextNonce++;
    this.sentAt.set(nonce, performance.now());
    this.inFlight++;
    this.ws.send(this.request(nonce));
  }

  close(): void {
    this.ws.close();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Runs the connections at a fixed total rate, or flat out when rate is null. */
async function drive(impl: string, connections: LoadConnection[], rate: number | null, listeners: { delivered(): number }): Promise<Result> {
  const latencies: number[] = [];
  let recording = false;
  let completed = 0;
  const record = (latencyMs: number) => {
    if (!recording) return;
    latencies.push(latencyMs);
    completed++;
  };
  for (const connection of connections) connection.onAnswer = record;

  const total = WARMUP_SECONDS + SECONDS;
  const start = performance.now();
  let sent = 0;
  let next = 0;
  let deliveredAtStart = 0;
  let recordStart = start;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const elapsed = (now - start) / 1000;
      if (!recording && elapsed >= WARMUP_SECONDS) {
        recording = true;
        recordStart = now;
        deliveredAtStart = listeners.delivered();
      }
      if (elapsed >= total) return resolve();
      if (rate === null) {
        for (const connection of connections) while (connection.inFlight < MAX_IN_FLIGHT) connection.send();
        setImmediate(tick);
        return;
      }
      // Open loop: everything due by now leaves now.
      const due = Math.floor(elapsed * rate);
      for (; sent < due; sent++) {
        connections[next].send();
        next = (next + 1) % connections.length;
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = (performance.now() - recordStart) / 1000;
  // Let the last answers in before the next run.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const sorted = Float64Array.from(latencies).sort();
  const result: Result = {
    impl,
    load: rate === null ? 'max' : 'fixed',
    rate,
    connections: connections.length,
    msgsPerSec: Math.round(completed / seconds),
    p50us: Math.round(percentile(sorted, 0.5) * 1000),
    p99us: Math.round(percentile(sorted, 0.99) * 1000),
    p999us: Math.round(percentile(sorted, 0.999) * 1000),
  };
  const delivered = listeners.delivered() - deliveredAtStart;
  if (delivered !== completed) result.deliveredPerSec = Math.round(delivered / seconds);
  return result;
}

// ---- Scenarios ------------------------------------------------------------------------------

async function echoScenario(port: number, rate: number | null): Promise<Result> {
  const url = `ws://127.0.0.1:${port}/gateway`;
  const connections: LoadConnection[] = [];
  const channelId = '1234567890123456789';
  const messageId = '1234567890123456790';
  for (let i = 0; i < CONNECTIONS; i++) {
    const ws = await openSocket(url);
    connections.push(new LoadConnection(ws, (nonce) => `{"op":21,"d":{"channel_id":"${channelId}","message_id":"${messageId}","nonce":${nonce}}}`));
  }
  const result = await drive('uws-echo', connections, rate, { delivered: () => connections.reduce((sum, c) => sum + c.delivered, 0) });
  for (const connection of connections) connection.close();
  return result;
}

interface GatewaySetup {
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  tokens: UserTokens;
  url: string;
}

async function ackScenario(setup: GatewaySetup, rate: number | null, round: number): Promise<Result> {
  const connections: LoadConnection[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const userId = String(2n ** 60n + BigInt(round * 100_000 + i));
    const channelId = String(2n ** 61n + BigInt(round * 100_000 + i));
    await setup.admin('PUT', `/v1/channels/${channelId}/members/${userId}`);
    const post = await setup.admin('POST', `/v1/channels/${channelId}/messages`, { author_id: userId });
    const { message_id: messageId } = (await post.json()) as { message_id: string };
    const ws = await identifiedSocket(setup.url, await setup.tokens.sign(userId, 3600));
    connections.push(new LoadConnection(ws, (nonce) => `{"op":21,"d":{"channel_id":"${channelId}","message_id":"${messageId}","nonce":${nonce}}}`));
  }
  const result = await drive('gateway-ack', connections, rate, { delivered: () => connections.reduce((sum, c) => sum + c.delivered, 0) });
  for (const connection of connections) connection.close();
  return result;
}

async function createScenario(setup: GatewaySetup, rate: number | null, round: number): Promise<Result> {
  // CONNECTIONS sessions in channels of FANOUT members; one author per channel sends.
  const authors: LoadConnection[] = [];
  const everyone: LoadConnection[] = [];
  const channels = Math.max(1, Math.floor(CONNECTIONS / FANOUT));
  for (let c = 0; c < channels; c++) {
    const channelId = String(2n ** 62n + BigInt(round * 100_000 + c));
    for (let m = 0; m < FANOUT; m++) {
      const userId = String(2n ** 60n + BigInt(round * 100_000 + 50_000 + c * FANOUT + m));
      await setup.admin('PUT', `/v1/channels/${channelId}/members/${userId}`);
      const ws = await identifiedSocket(setup.url, await setup.tokens.sign(userId, 3600));
      const connection = new LoadConnection(ws, (nonce) => `{"op":20,"d":{"channel_id":"${channelId}","nonce":${nonce}}}`);
      everyone.push(connection);
      if (m === 0) authors.push(connection);
    }
  }
  const result = await drive('gateway-create-fanout', authors, rate, { delivered: () => everyone.reduce((sum, c) => sum + c.delivered, 0) });
  for (const connection of everyone) connection.close();
  return { ...result, connections: everyone.length };
}

// ---- Main -----------------------------------------------------------------------------------

function print(result: Result | Record<string, unknown>): void {
  if (JSON_OUTPUT) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${Object.entries(result).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('  ')}\n`);
}

/** Per field, the median over rounds (the runs of a round share the machine's mood). */
function median(runs: Result[]): Result {
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const result: Result = { ...runs[0] };
  for (const key of ['msgsPerSec', 'p50us', 'p99us', 'p999us', 'deliveredPerSec'] as const) {
    if (runs[0][key] !== undefined) result[key] = mid(runs.map((run) => run[key] ?? 0));
  }
  return result;
}

async function main(): Promise<void> {
  const keyspace = `bench_gateway_${Date.now().toString(36)}`;
  const echo = await startUwsPeer('uws-echo-server.js');
  const gateway = await startBenchGateway(keyspace);
  const runs = new Map<string, Result[]>();
  const keep = (result: Result) => {
    const key = `${result.impl}/${result.load}`;
    runs.set(key, [...(runs.get(key) ?? []), result]);
    if (!JSON_OUTPUT) print({ round: true, ...result });
  };
  try {
    const base = `http://127.0.0.1:${gateway.port}`;
    const setup: GatewaySetup = {
      url: `ws://127.0.0.1:${gateway.port}/gateway`,
      tokens: new UserTokens(BENCH_JWT_SECRET),
      admin: (method, path, body) =>
        fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) }),
    };
    // Rounds interleave the implementations, so a noisy neighbour hurts them alike.
    for (let round = 0; round < ROUNDS; round++) {
      keep(await echoScenario(echo.port, RATE));
      keep(await ackScenario(setup, RATE, round * 4));
      keep(await createScenario(setup, RATE / FANOUT, round * 4 + 1));
      keep(await echoScenario(echo.port, null));
      keep(await ackScenario(setup, null, round * 4 + 2));
      keep(await createScenario(setup, null, round * 4 + 3));
    }
  } finally {
    await stopServer(echo.child);
    await stopServer(gateway.child);
    await dropBenchKeyspace(keyspace);
  }

  const results = [...runs.values()].map(median);
  for (const result of results) print({ ...result, rounds: ROUNDS });
  const find = (impl: string, load: 'fixed' | 'max') => results.find((r) => r.impl === impl && r.load === load)!;
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const echoFixed = find('uws-echo', 'fixed');
  const echoMax = find('uws-echo', 'max');
  print({
    ratio: {
      // Targets: p99 <= 1.5 x echo at the same rate; top throughput >= 0.6 x echo.
      ackP99VsEcho: round2(find('gateway-ack', 'fixed').p99us / echoFixed.p99us),
      ackThroughputVsEcho: round2(find('gateway-ack', 'max').msgsPerSec / echoMax.msgsPerSec),
      // Fan-out runs at rate / fanout requests, each answered to the author and told to fanout - 1 others.
      createP99VsEcho: round2(find('gateway-create-fanout', 'fixed').p99us / echoFixed.p99us),
      createDeliveredVsEcho: round2((find('gateway-create-fanout', 'max').deliveredPerSec ?? 0) / echoMax.msgsPerSec),
    },
    rate: RATE,
    seconds: SECONDS,
    rounds: ROUNDS,
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
