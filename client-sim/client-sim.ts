// `npm run sim -- [flags]`: a swarm of simulated users on the typed client against a
// running gateway. Sets up memberships through the admin API, connects every online
// device, runs a Poisson message load with reads (acks), prints a live progress line on
// stderr and a JSON summary on stdout. `--help` lists the flags.

import { parseArgs } from 'node:util';
import { DEV_ADMIN_TOKEN, DEV_JWT_SECRET } from '../src/config.js';
import type { SecondSample } from './latency.js';
import { connectSwarm, type LoadShape, Swarm } from './swarm.js';
import { planSwarm, randomIdBase, type SwarmShape } from './swarm-plan.js';
import { putMemberships, signTokens, waitUntilReady } from './swarm-setup.js';

const FLAGS = {
  url: { default: process.env.GATEWAY_URL ?? 'ws://127.0.0.1:8080/gateway', help: 'gateway WebSocket URL (env GATEWAY_URL)' },
  'admin-token': { default: process.env.GATEWAY_ADMIN_TOKEN ?? DEV_ADMIN_TOKEN, help: 'bearer token of /v1 (env GATEWAY_ADMIN_TOKEN; dev default)' },
  'jwt-secret': { default: process.env.GATEWAY_JWT_SECRET ?? DEV_JWT_SECRET, help: 'HS256 secret for user tokens (env GATEWAY_JWT_SECRET; dev default)' },
  encoding: { default: 'json', help: 'json | msgpack' },
  users: { default: '1000', help: 'users in the swarm' },
  channels: { default: '100', help: 'channels' },
  'max-channel-size': { default: '', help: 'members of the largest channel (default: every user)' },
  'min-channel-size': { default: '2', help: 'members of the smallest channels' },
  'size-exponent': { default: '1', help: 'channel of rank r has max-channel-size * r^-x members' },
  online: { default: '1', help: 'fraction of users online' },
  'multi-device': { default: '0.2', help: 'fraction of online users with several devices' },
  'max-devices': { default: '3', help: 'most devices of a multi-device user' },
  rate: { default: '100', help: 'messages per second, Poisson' },
  'activity-exponent': { default: '0.5', help: "a channel's share of messages grows as size^x" },
  mention: { default: '0.1', help: 'probability a message mentions one member' },
  'mention-everyone': { default: '0', help: 'probability a message has mention_everyone' },
  read: { default: '0.3', help: 'probability a member who gets a message reads (acks) the channel' },
  'read-delay-ms': { default: '2000', help: 'mean delay before that read (exponential)' },
  seconds: { default: '30', help: 'measured seconds of load' },
  'warmup-seconds': { default: '3', help: 'load before measuring (not recorded)' },
  'drain-ms': { default: '3000', help: 'wait for late updates after the load' },
  'max-messages': { default: '', help: 'cap on messages sent (default 2 x rate x duration)' },
  'setup-concurrency': { default: '32', help: 'membership PUTs in flight' },
  'connect-concurrency': { default: '32', help: 'sessions connecting at once' },
  seed: { default: '1', help: 'seed of the swarm and of the load' },
  'id-base': { default: '', help: 'first user id (decimal); default random above 2^60' },
  'token-ttl': { default: '86400', help: 'user token lifetime, seconds' },
} as const;

type FlagName = keyof typeof FLAGS;

function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) => `  --${name.padEnd(20)} ${flag.help}${flag.default === '' ? '' : ` [${name.includes('token') || name.includes('secret') ? '…' : flag.default}]`}`);
  return `usage: npm run sim -- [flags]\n${lines.join('\n')}\n`;
}

function readFlags(): Record<FlagName, string> {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, flag]) => [name, { type: 'string' as const, default: flag.default }]));
  const { values } = parseArgs({ options: { ...options, help: { type: 'boolean' } }, strict: true });
  if (values.help === true) {
    process.stdout.write(usage());
    process.exit(0);
  }
  return values as Record<FlagName, string>;
}

function numberFlag(flags: Record<FlagName, string>, name: FlagName, min: number, max: number, integer = false): number {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new RangeError(`--${name} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got "${flags[name]}"`);
  }
  return value;
}

const isTty = process.stderr.isTTY === true;

/** On a terminal one line rewritten every second; otherwise a line every 10 s. */
function progress(line: string, force = false): void {
  if (isTty) process.stderr.write(`\r\x1b[2K${line}`);
  else if (force) process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  const flags = readFlags();
  const users = numberFlag(flags, 'users', 2, 10_000_000, true);
  const shape: SwarmShape = {
    users,
    channels: numberFlag(flags, 'channels', 1, 10_000_000, true),
    maxChannelSize: flags['max-channel-size'] === '' ? users : numberFlag(flags, 'max-channel-size', 1, users, true),
    minChannelSize: numberFlag(flags, 'min-channel-size', 1, users, true),
    sizeExponent: numberFlag(flags, 'size-exponent', 0, 10),
    onlineFraction: numberFlag(flags, 'online', 0, 1),
    multiDeviceFraction: numberFlag(flags, 'multi-device', 0, 1),
    maxDevices: numberFlag(flags, 'max-devices', 1, 16, true),
    seed: numberFlag(flags, 'seed', 0, 2 ** 32 - 1, true),
    idBase: flags['id-base'] === '' ? randomIdBase() : BigInt(flags['id-base']),
  };
  const rate = numberFlag(flags, 'rate', 0.001, 1_000_000);
  const seconds = numberFlag(flags, 'seconds', 1, 86_400, true);
  const warmupSeconds = numberFlag(flags, 'warmup-seconds', 0, 3600, true);
  const load: LoadShape = {
    messagesPerSecond: rate,
    activityExponent: numberFlag(flags, 'activity-exponent', 0, 4),
    mentionProbability: numberFlag(flags, 'mention', 0, 1),
    everyoneProbability: numberFlag(flags, 'mention-everyone', 0, 1),
    readProbability: numberFlag(flags, 'read', 0, 1),
    readDelayMs: numberFlag(flags, 'read-delay-ms', 0, 3_600_000),
    warmupSeconds,
    seconds,
    drainMs: numberFlag(flags, 'drain-ms', 0, 600_000, true),
    maxMessages: flags['max-messages'] === '' ? Math.ceil(2 * rate * (seconds + warmupSeconds)) : numberFlag(flags, 'max-messages', 0, 1e9, true),
    seed: shape.seed,
  };
  const encoding = flags.encoding;
  if (encoding !== 'json' && encoding !== 'msgpack') throw new RangeError('--encoding must be json or msgpack');
  const target = { gatewayUrl: flags.url, adminToken: flags['admin-token'], jwtSecret: flags['jwt-secret'] };

  await waitUntilReady(target.gatewayUrl, 30_000);
  const plan = planSwarm(shape);
  const online = plan.devices.reduce((n, d) => n + (d > 0 ? 1 : 0), 0);
  const sessionCount = plan.devices.reduce((n, d) => n + d, 0);
  process.stderr.write(
    `swarm: ${users} users (${online} online, ${sessionCount} sessions), ${shape.channels} channels (largest ${plan.members[0].length}, smallest ${plan.members[plan.members.length - 1].length}), ${plan.memberships} memberships; ids from ${shape.idBase}\n`,
  );

  let setupStarted = performance.now();
  let lastReport = 0;
  await putMemberships(target, plan, numberFlag(flags, 'setup-concurrency', 1, 1024, true), (done, total) => {
    const now = performance.now();
    if (now - lastReport < 1000 && done < total) return;
    lastReport = now;
    progress(`setup: ${done}/${total} memberships`, done === total || now - setupStarted > 10_000);
  });
  const setupSeconds = (performance.now() - setupStarted) / 1000;
  if (isTty) process.stderr.write('\n');

  const tokens = await signTokens(target.jwtSecret, plan.userIds, numberFlag(flags, 'token-ttl', 60, 365 * 86400, true));
  setupStarted = performance.now();
  const sessions = await connectSwarm(target.gatewayUrl, encoding, plan, tokens, numberFlag(flags, 'connect-concurrency', 1, 1024, true), (done, total) => {
    const now = performance.now();
    if (now - lastReport < 1000 && done < total) return;
    lastReport = now;
    progress(`connect: ${done}/${total} sessions`, done === total);
  });
  const connectSeconds = (performance.now() - setupStarted) / 1000;
  if (isTty) process.stderr.write('\n');

  let reported = 0;
  const onSecond = (sample: SecondSample, open: number, warmingUp: boolean) => {
    const line = `${warmingUp ? 'warm-up' : `t=${sample.t}s`} sessions=${open} events/s=${sample.events} p50=${sample.p50us}µs p99=${sample.p99us}µs max=${sample.maxUs}µs`;
    progress(line, ++reported % 10 === 0);
  };
  const report = await new Swarm(plan, sessions, load, onSecond).run();
  if (isTty) process.stderr.write('\n');

  const summary = {
    tool: 'client-sim',
    gateway: target.gatewayUrl,
    encoding,
    swarm: { ...shape, idBase: String(shape.idBase), memberships: plan.memberships, onlineUsers: online, sessions: sessionCount },
    load,
    setup: { membershipSeconds: Number(setupSeconds.toFixed(2)), connectSeconds: Number(connectSeconds.toFixed(2)) },
    ...report,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`\nclient-sim: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
