// One load process of the fan-out benchmark (test/bench/fanout.ts starts several): holds the
// sockets of every member of its channels, one per user, and on each `run` command sends its
// share of the messages from random members, timing each member's update.
//
// A channel's members all live in one load process, so the send time and every receipt of
// a message are read from the same clock (performance.now). The author learns the message
// id from its own answer (the frame carrying its nonce); copies that arrive before it wait
// in `early` with their receipt times. Frames are scanned with indexOf, not JSON.parse:
// the load generator must cost less than what it measures.
//
// stdin: `run <rate> <warmupSeconds> <seconds> <startAtEpochMs> <samplesPath>` or `exit`.
// stdout: `connected`, then one JSON line per run.

import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type WebSocket from 'ws';
import { UserTokens } from '../../src/gateway/user-tokens.js';
import { identifiedSocket, openSocket } from './bench-sockets.js';
import { channelIdOf, type LoadConfig, type LoadRunResult, userIdOf } from './fanout-layout.js';

const config = JSON.parse(process.argv[2]) as LoadConfig;
const tokens = new UserTokens(config.jwtSecret);

interface Member {
  ws: WebSocket;
  channel: number;
}

const members: Member[] = [];
/** Nonce -> send time of messages whose id is not known yet. */
const sentByNonce = new Map<number, number>();
/** Message id -> send time (negative: sent during warm-up, not measured). */
const sentById = new Map<string, number>();
/** Message id -> receipt times before its id was known. */
const early = new Map<string, number[]>();
let nextNonce = 1;
let measureFrom = Infinity;
let runStartedAt = 0;
let latencies = new Float32Array(1 << 16);
let seconds = new Uint16Array(1 << 16);
let samples = 0;

function record(sentAt: number, receivedAt: number): void {
  if (sentAt < measureFrom) return;
  if (samples === latencies.length) {
    const grownLatencies = new Float32Array(samples * 2);
    grownLatencies.set(latencies);
    latencies = grownLatencies;
    const grownSeconds = new Uint16Array(samples * 2);
    grownSeconds.set(seconds);
    seconds = grownSeconds;
  }
  latencies[samples] = (receivedAt - sentAt) * 1000;
  seconds[samples] = Math.floor((sentAt - measureFrom) / 1000);
  samples++;
}

/** The quoted value after `key` in a frame (ids), or the number after it (nonces). */
function field(frame: string, key: string): string | undefined {
  const at = frame.indexOf(key);
  if (at === -1) return undefined;
  const start = at + key.length;
  const quoted = frame.charCodeAt(start) === 34;
  const from = quoted ? start + 1 : start;
  let end = from;
  while (end < frame.length) {
    const c = frame.charCodeAt(end);
    if (c < 48 || c > 57) break;
    end++;
  }
  return end === from ? undefined : frame.slice(from, end);
}

function onFrame(data: Buffer): void {
  const receivedAt = performance.now();
  const frame = data.toString();
  if (!frame.includes('"READ_STATE_UPDATE"')) return;
  const id = field(frame, '"last_message_id":');
  if (id === undefined) return;
  const nonce = field(frame, '"nonce":');
  if (nonce !== undefined) {
    const sentAt = sentByNonce.get(Number(nonce));
    if (sentAt !== undefined) {
      sentByNonce.delete(Number(nonce));
      sentById.set(id, sentAt);
      for (const at of early.get(id) ?? []) record(sentAt, at);
      early.delete(id);
    }
  }
  const sentAt = sentById.get(id);
  if (sentAt === undefined) {
    const waiting = early.get(id);
    if (waiting === undefined) early.set(id, [receivedAt]);
    else waiting.push(receivedAt);
    return;
  }
  record(sentAt, receivedAt);
}

async function connectMember(channel: number, member: number): Promise<Member> {
  const userId = userIdOf(channel, member, config.members);
  const ws =
    config.impl === 'uws-pubsub'
      ? await openSocket(`${config.url}?channel=${channelIdOf(channel)}`)
      : await identifiedSocket(config.url, await tokens.sign(userId, 24 * 3600));
  ws.on('message', onFrame);
  return { ws, channel };
}

async function connectAll(): Promise<void> {
  const wanted: Array<[number, number]> = [];
  for (let c = config.firstChannel; c < config.firstChannel + config.channels; c++) for (let m = 0; m < config.members; m++) wanted.push([c, m]);
  let next = 0;
  const worker = async () => {
    while (next < wanted.length) {
      const [channel, member] = wanted[next++];
      members.push(await connectMember(channel, member));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

async function run(rate: number, warmupSeconds: number, measuredSeconds: number, startAt: number, samplesPath: string): Promise<LoadRunResult> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
  samples = 0;
  sentById.clear();
  early.clear();
  runStartedAt = performance.now();
  measureFrom = runStartedAt + warmupSeconds * 1000;
  const total = warmupSeconds + measuredSeconds;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let cpuAtMeasure = process.cpuUsage();
  let eluAtMeasure = performance.eventLoopUtilization();
  let measuring = false;
  let sent = 0;
  let measuredSent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const elapsed = (now - runStartedAt) / 1000;
      if (!measuring && now >= measureFrom) {
        measuring = true;
        loop.enable();
        cpuAtMeasure = process.cpuUsage();
        eluAtMeasure = performance.eventLoopUtilization();
      }
      if (elapsed >= total) return resolve();
      const due = Math.floor(elapsed * rate);
      for (; sent < due; sent++) {
        const author = members[Math.floor(Math.random() * members.length)];
        const nonce = nextNonce++;
        const sentAt = performance.now();
        sentByNonce.set(nonce, sentAt);
        // The same test as record()'s: a catch-up burst can cross the start of the measured seconds.
        if (sentAt >= measureFrom) measuredSent++;
        author.ws.send(`{"op":20,"d":{"channel_id":"${channelIdOf(author.channel)}","nonce":${nonce}}}`);
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  const cpu = process.cpuUsage(cpuAtMeasure);
  const elu = performance.eventLoopUtilization(eluAtMeasure);
  loop.disable();
  // Late updates: wait until every measured message reached every member, or 5 s.
  const expected = measuredSent * config.members;
  const deadline = performance.now() + 5000;
  while (samples < expected && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(samplesPath, Buffer.concat([Buffer.from(latencies.buffer, 0, samples * 4), Buffer.from(seconds.buffer, 0, samples * 2)]));
  sentByNonce.clear();
  return {
    sent: measuredSent,
    expected,
    received: samples,
    samples,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
    utilization: elu.utilization,
  };
}

async function main(): Promise<void> {
  await connectAll();
  process.stdout.write('connected\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, ...args] = line.trim().split(' ');
    if (command === 'exit') break;
    if (command !== 'run') continue;
    const [rate, warmup, measured, startAt] = args.slice(0, 4).map(Number);
    process.stdout.write(`${JSON.stringify(await run(rate, warmup, measured, startAt, args[4]))}\n`);
  }
  for (const member of members) member.ws.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`load process failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
