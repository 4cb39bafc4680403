// `npm run k6 -- <steady|storm|fanout> [--groups G] [--members M] [--summary FILE] [-- k6 flags]`
//
// Runs one of the k6 scripts in k6/ against a running gateway. k6 cannot sign JWTs nor
// call the admin API comfortably, so this Node step does the set-up first: it creates the
// channels and memberships through PUT /v1/channels/:c/members/:u, signs one token per
// user with the gateway's secret, and writes them to a fixture file the script open()s.
// Then it runs .local/bin/k6 (built by k6/build.sh when missing) and leaves the summary
// JSON written by the script's handleSummary at --summary (default .local/k6/<script>-summary.json).
// k6's exit code is passed on: 99 means a threshold failed.
//
// Environment: GATEWAY_URL (ws://127.0.0.1:8080/gateway), GATEWAY_ADMIN_TOKEN and
// GATEWAY_JWT_SECRET (the gateway's development values when unset). Flags after `--` go to
// `k6 run` as they are, e.g. `-- -e RATE=4 -e DURATION=2m`.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEV_ADMIN_TOKEN, DEV_JWT_SECRET } from '../src/config.js';
import { randomIdBase } from './swarm-plan.js';
import { type GatewayTarget, type MembershipPlan, putMemberships, signTokens, waitUntilReady } from './swarm-setup.js';

/** dist/client-sim -> repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const K6 = join(ROOT, '.local/bin/k6');

/** Fixture shape per script: `groups` channels of `members` users each (every user in one channel). */
const SCRIPTS = {
  // One VU per group: its members' sockets, one sender at a time, receivers acking.
  steady: { groups: 40, members: 10 },
  // Users to identify as, spread over channels so that READY carries read states.
  storm: { groups: 20, members: 100 },
  // One large channel, its members spread over many VUs.
  fanout: { groups: 1, members: 1000 },
} as const;
type ScriptName = keyof typeof SCRIPTS;

/** What the scripts open(): the gateway URL and, per channel, its members with their tokens. */
interface K6Fixture {
  gatewayUrl: string;
  groups: { channelId: string; members: { userId: string; token: string }[] }[];
}

function usage(): never {
  process.stderr.write(`usage: npm run k6 -- <${Object.keys(SCRIPTS).join('|')}> [--groups G] [--members M] [--summary FILE] [-- k6 run flags]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const separator = process.argv.indexOf('--', 2);
  const own = separator === -1 ? process.argv.slice(2) : process.argv.slice(2, separator);
  const passThrough = separator === -1 ? [] : process.argv.slice(separator + 1);
  const { values, positionals } = parseArgs({
    args: own,
    options: { groups: { type: 'string' }, members: { type: 'string' }, summary: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const script = positionals[0] as ScriptName | undefined;
  if (script === undefined || !(script in SCRIPTS) || positionals.length > 1) usage();
  const groups = Number(values.groups ?? SCRIPTS[script].groups);
  const members = Number(values.members ?? SCRIPTS[script].members);
  if (!Number.isSafeInteger(groups) || groups < 1 || !Number.isSafeInteger(members) || members < 2) usage();

  if (!existsSync(K6)) {
    process.stderr.write('k6 not built yet: running k6/build.sh\n');
    const build = spawnSync('bash', [join(ROOT, 'k6/build.sh')], { stdio: 'inherit' });
    if (build.status !== 0) process.exit(build.status ?? 1);
  }

  const target: GatewayTarget = {
    gatewayUrl: process.env.GATEWAY_URL ?? 'ws://127.0.0.1:8080/gateway',
    adminToken: process.env.GATEWAY_ADMIN_TOKEN ?? DEV_ADMIN_TOKEN,
    jwtSecret: process.env.GATEWAY_JWT_SECRET ?? DEV_JWT_SECRET,
  };
  await waitUntilReady(target.gatewayUrl, 30_000);

  // Fresh ids on every run, so no state from an earlier run (unread counts) leaks in.
  const idBase = randomIdBase();
  const plan: MembershipPlan = {
    userIds: Array.from({ length: groups * members }, (_, i) => String(idBase + BigInt(i))),
    channelIds: Array.from({ length: groups }, (_, g) => String(idBase + (1n << 32n) + BigInt(g))),
    members: Array.from({ length: groups }, (_, g) => Array.from({ length: members }, (_, m) => g * members + m)),
  };
  process.stderr.write(`k6 ${script}: setting up ${groups} channel(s) of ${members} members on ${target.gatewayUrl}\n`);
  await putMemberships(target, plan, 32);
  // Long enough for any run; the tokens only exist in the fixture file under .local/.
  const tokens = await signTokens(target.jwtSecret, plan.userIds, 6 * 3600);
  const fixture: K6Fixture = {
    gatewayUrl: target.gatewayUrl,
    groups: plan.members.map((users, g) => ({ channelId: plan.channelIds[g], members: users.map((u) => ({ userId: plan.userIds[u], token: tokens[u] })) })),
  };
  const workDir = join(ROOT, '.local/k6');
  mkdirSync(workDir, { recursive: true });
  const fixturePath = join(workDir, `${script}-fixture.json`);
  writeFileSync(fixturePath, JSON.stringify(fixture));
  const summaryPath = resolve(values.summary ?? join(workDir, `${script}-summary.json`));
  mkdirSync(dirname(summaryPath), { recursive: true });

  const run = spawnSync(K6, ['run', '-e', `FIXTURE=${fixturePath}`, '-e', `SUMMARY_FILE=${summaryPath}`, ...passThrough, join(ROOT, 'k6', `${script}.js`)], { stdio: 'inherit' });
  process.stderr.write(`k6 ${script}: exit ${run.status}; summary in ${summaryPath}\n`);
  process.exit(run.status ?? 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`k6 runner: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
