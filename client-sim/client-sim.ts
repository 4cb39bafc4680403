// `npm run sim -- [flags]`: a swarm of simulated users on the typed client against a
// running gateway (it starts none: `npm start` one, or name one with --url). Sets up
// memberships through the admin API, connects every online device (a ReconnectingClient
// each), runs a Poisson message load with reads (acks), prints a live progress line and a
// summary on stderr and a JSON summary on stdout. `--help` lists the flags.
//
// With `--drop-rate P` the swarm also drops sockets (each connected one with probability P
// per second) and the clients resume by themselves. The same load then runs twice against
// the same gateway, first without drops (the control) and then with them, each on sessions
// of its own, with one JSON line per phase (`dropRate` tells them apart) so the two can be
// compared; `--no-control` runs only the phase with drops.

import { parseArgs } from 'node:util';
import { DEV_ADMIN_TOKEN, DEV_JWT_SECRET } from '../src/config.js';
import type { SecondSample } from './latency.js';
import { connectSwarm, type LoadShape, Swarm, type SwarmReport } from './swarm.js';
import { planSwarm, randomIdBase, type SwarmShape } from './swarm-plan.js';
import { putMemberships, signTokens, waitUntilReady } from './swarm-setup.js';

const FLAGS = {
  url: { default: process.env.GATEWAY_URL ?? 'ws://127.0.0.1:8080/gateway', help: 'gateway WebSocket URL (env GATEWAY_URL); on a cluster, the nodes\' URLs comma-separated (sessions spread over them)' },
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
  'drop-rate': { default: '0', help: 'probability per second that the swarm drops each connected socket during the load (0..0.99); > 0: a control phase without drops runs first' },
} as const;
const BOOLEAN_FLAGS = {
  'no-control': 'with --drop-rate: skip the control phase without drops',
} as const;

type FlagName = keyof typeof FLAGS;

function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) => `  --${name.padEnd(20)} ${flag.help}${flag.default === '' ? '' : ` [${name.includes('token') || name.includes('secret') ? '…' : flag.default}]`}`);
  for (const [name, help] of Object.entries(BOOLEAN_FLAGS)) lines.push(`  --${name.padEnd(20)} ${help}`);
  return `usage: npm run sim -- [flags]\n${lines.join('\n')}\n`;
}

type Flags = Record<FlagName, string> & Record<keyof typeof BOOLEAN_FLAGS, boolean>;

function readFlags(): Flags {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, flag]) => [name, { type: 'string' as const, default: flag.default }]));
  const booleans = Object.fromEntries(Object.keys(BOOLEAN_FLAGS).map((name) => [name, { type: 'boolean' as const, default: false }]));
  const { values } = parseArgs({ options: { ...options, ...booleans, help: { type: 'boolean' } }, strict: true });
  if (values.help === true) {
    process.stdout.write(usage());
    process.exit(0);
  }
  return values as Flags;
}

function numberFlag(flags: Flags, name: FlagName, min: number, max: number, integer = false): number {
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
  const dropRate = numberFlag(flags, 'drop-rate', 0, 0.99);
  if (flags['no-control'] && dropRate === 0) throw new RangeError('--no-control goes with --drop-rate above 0');
  const encoding = flags.encoding;
  if (encoding !== 'json' && encoding !== 'msgpack') throw new RangeError('--encoding must be json or msgpack');
  const gatewayUrls = flags.url.split(',').map((url) => url.trim()).filter((url) => url !== '');
  if (gatewayUrls.length === 0) throw new RangeError('--url names no gateway');
  const target = { gatewayUrl: gatewayUrls[0], adminToken: flags['admin-token'], jwtSecret: flags['jwt-secret'] };

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
  const connectConcurrency = numberFlag(flags, 'connect-concurrency', 1, 1024, true);
  // Same load twice, on the same gateway: without drops (the control), then with them.
  const phases: Array<{ name: Phase; dropRate: number }> =
    dropRate === 0 ? [{ name: 'run', dropRate: 0 }] : [...(flags['no-control'] ? [] : [{ name: 'control' as const, dropRate: 0 }]), { name: 'drops', dropRate }];

  const reports: Array<{ name: Phase; report: SwarmReport }> = [];
  for (const phase of phases) {
    const tag = phases.length > 1 ? `[${phase.name}] ` : '';
    setupStarted = performance.now();
    const sessions = await connectSwarm(gatewayUrls, encoding, plan, tokens, connectConcurrency, (done, total) => {
      const now = performance.now();
      if (now - lastReport < 1000 && done < total) return;
      lastReport = now;
      progress(`${tag}connect: ${done}/${total} sessions`, done === total);
    });
    const connectSeconds = (performance.now() - setupStarted) / 1000;
    if (isTty) process.stderr.write('\n');

    let reported = 0;
    const onSecond = (sample: SecondSample, connected: number, warmingUp: boolean, drops: number) => {
      const line = `${tag}${warmingUp ? 'warm-up' : `t=${sample.t}s`} sessions=${connected}${phase.dropRate > 0 ? ` drops=${drops}` : ''} events/s=${sample.events} p50=${sample.p50us}µs p99=${sample.p99us}µs max=${sample.maxUs}µs`;
      progress(line, ++reported % 10 === 0);
    };
    const report = await new Swarm(plan, sessions, load, { dropRate: phase.dropRate, onSecond }).run();
    if (isTty) process.stderr.write('\n');
    reports.push({ name: phase.name, report });

    const { dropRate: phaseDropRate, ...figures } = report;
    const summary = {
      tool: 'client-sim',
      phase: phase.name,
      dropRate: phaseDropRate,
      gateway: gatewayUrls.join(','),
      encoding,
      swarm: { ...shape, idBase: String(shape.idBase), memberships: plan.memberships, onlineUsers: online, sessions: sessionCount },
      load,
      setup: { membershipSeconds: Number(setupSeconds.toFixed(2)), connectSeconds: Number(connectSeconds.toFixed(2)) },
      ...figures,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.stderr.write(`${humanSummary(tag, report)}\n`);
  }
  if (reports.length > 1) process.stderr.write(`${comparison(reports)}\n`);
}

type Phase = 'run' | 'control' | 'drops';

function ms(us: number): string {
  return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
}

/** The phase's figures in a few lines, for a person (the JSON line has everything). */
function humanSummary(tag: string, r: SwarmReport): string {
  const m = r.latency.message;
  const lines = [
    `${tag}drop rate ${r.dropRate}/s: ${r.messagesSent} messages, ${r.acksSent} acks, ${r.sessions} sessions`,
    `  e2e message → update: ${m.count} updates, p50 ${ms(m.p50us)}, p99 ${ms(m.p99us)}, p99.9 ${ms(m.p999us)}, max ${ms(m.maxUs)}; ack p99 ${ms(r.latency.ack.p99us)}`,
    `  lost ${r.lost}, duplicates ${r.duplicates}, sequence gaps ${r.sequenceGaps}, missed acks ${r.missedAcks}`,
  ];
  if (r.redirects > 0 || r.crossNode.share > 0) {
    const cross = r.crossNode;
    lines.push(`  cluster: ${r.redirects} redirects; ${(cross.share * 100).toFixed(1)}% of updates cross nodes (p50 ${ms(cross.latency.p50us)}, p99 ${ms(cross.latency.p99us)}; same node p50 ${ms(cross.sameNodeLatency.p50us)}, p99 ${ms(cross.sameNodeLatency.p99us)})`);
  }
  if (r.dropRate > 0 || r.reconnects > 0) {
    const replayed = r.latency.replayed;
    lines.push(
      `  drops ${r.drops}, reconnects ${r.reconnects}, resumes ${r.resumes}, invalid sessions ${r.invalidSessions}, replayed dispatches ${r.replayed}` +
        (replayed.count > 0 ? ` (measured replayed updates: ${replayed.count}, p50 ${ms(replayed.p50us)}, p99 ${ms(replayed.p99us)}, max ${ms(replayed.maxUs)}: send to receipt, time away included)` : ''),
    );
  }
  const errors = Object.entries(r.errors);
  const closes = Object.entries(r.closes);
  if (errors.length > 0) lines.push(`  errors: ${errors.map(([what, n]) => `${what} ${n}`).join(', ')}`);
  if (closes.length > 0) lines.push(`  sockets closed by others: ${closes.map(([code, n]) => `${code} ×${n}`).join(', ')}`);
  return lines.join('\n');
}

/** The control and the drop phase side by side. */
function comparison(reports: Array<{ name: Phase; report: SwarmReport }>): string {
  const control = reports.find((r) => r.name === 'control')!.report.latency;
  const drops = reports.find((r) => r.name === 'drops')!.report.latency;
  const ratio = (a: number, b: number) => (b > 0 ? ` (${(a / b).toFixed(2)}×)` : '');
  return [
    'same load, without drops → with drops:',
    `  e2e message p99 ${ms(control.message.p99us)} → ${ms(drops.message.p99us)}${ratio(drops.message.p99us, control.message.p99us)}, p50 ${ms(control.message.p50us)} → ${ms(drops.message.p50us)}, max ${ms(control.message.maxUs)} → ${ms(drops.message.maxUs)}`,
    `  all (messages and acks) p99 ${ms(control.all.p99us)} → ${ms(drops.all.p99us)}${ratio(drops.all.p99us, control.all.p99us)}`,
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`\nclient-sim: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
