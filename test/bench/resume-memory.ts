// Resume-buffer memory: what disconnected sessions that each hold a full buffer cost, and
// whether they go away on time. The gateway's ResumeBuffer (rows of typed arrays) against
// the straightforward design, a list of the encoded frames each session sent ("frames"),
// each in a child process of its own (--expose-gc) so that heaps do not mix.
//
// Each child opens `sessions` sessions through the gateway's own ResumableSessions, sends
// every one `buffer` READ_STATE_UPDATEs (a pool of distinct states, prepared once and sent
// to many sessions as fan-out does), closes their sockets (1006: kept for RESUME), and
// measures after a full GC: bytes per buffered dispatch (heap + array buffers over the empty
// baseline), RSS, and how long one full GC takes with all of it alive. The rows child then
// waits out the resume window and reports how late the last session detached ended (expiry lateness) and
// the memory left after another full GC.
//
//   npm run bench:resume-memory -- --sessions 100000 --buffer 1000 --peer-sessions 10000 --json
//
// The frames peer runs with fewer sessions (--peer-sessions): at 100,000 × 1,000 its frames
// alone would take about 18 GB. Bytes per dispatch compare across the two sizes.
// One JSON line per design on stdout, then a ratio line; progress on stderr.

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { type Frame, PreparedReadState } from '../../src/gateway/codec.js';
import { Dispatcher } from '../../src/gateway/dispatch.js';
import { ResumableSessions } from '../../src/gateway/resumable-sessions.js';
import type { SessionLink } from '../../src/gateway/session.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { InMemoryReadStateStore } from '../support/in-memory-read-state-store.js';

const DESIGNS = ['rows', 'frames'] as const;
type Design = (typeof DESIGNS)[number];
const STATE_POOL = 4096;
/** The resume window of the run: short, so expiry is measured in seconds. */
const WINDOW_MS = 5000;

interface Result {
  design: Design;
  sessions: number;
  buffer: number;
  dispatches: number;
  bytesPerDispatch: number;
  heapUsedMiB: number;
  arrayBuffersMiB: number;
  rssMiB: number;
  fillSeconds: number;
  /** One full GC with every buffer alive. */
  fullGcMs: number;
  /** rows only: the last session ended this long after its window (ms). */
  expiryLateMs?: number;
  /** rows only: heap + array buffers left over the baseline once every session expired. */
  leftAfterExpiryMiB?: number;
}

const MiB = 1024 * 1024;
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

function collect(): void {
  (globalThis as { gc?: () => void }).gc!();
}

function footprint(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Memory over `baseline` and the time of one full GC, with every buffer alive. */
function measureHeld(design: Design, sessions: number, buffer: number, baseline: number, fillSeconds: number): Result {
  const started = performance.now();
  collect();
  const fullGcMs = performance.now() - started;
  const usage = process.memoryUsage();
  return {
    design,
    sessions,
    buffer,
    dispatches: sessions * buffer,
    bytesPerDispatch: round((footprint() - baseline) / (sessions * buffer), 2),
    heapUsedMiB: round(usage.heapUsed / MiB),
    arrayBuffersMiB: round(usage.arrayBuffers / MiB),
    rssMiB: round(usage.rss / MiB),
    fillSeconds: round(fillSeconds, 2),
    fullGcMs: round(fullGcMs, 1),
  };
}

/** Distinct READ_STATE_UPDATEs with ids above 2^53, as fan-out prepares them. */
function statePool(): PreparedReadState[] {
  const base = 1n << 60n;
  return Array.from({ length: STATE_POOL }, (_, i) => {
    const id = (n: number) => (base + BigInt(i * 1000 + n)).toString();
    return PreparedReadState.ofState({ channel_id: id(0), last_message_id: id(2), last_acked_id: id(1), unread_count: i % 1000, mention_count: i % 7 });
  });
}

const silentLink: SessionLink = { send: () => {}, close: () => {} };

async function runRows(sessionCount: number, buffer: number): Promise<Result> {
  const log = pino({ level: 'silent' });
  const dispatcher = new Dispatcher(new PersistentReadStates({ store: new InMemoryReadStateStore(), capacity: 16, flushDelayMs: 60_000, workerId: 1 }), log);
  const sessions = new ResumableSessions(dispatcher, WINDOW_MS, buffer);
  const pool = statePool();
  collect();
  const baseline = footprint();
  const started = performance.now();
  const open = [];
  for (let i = 0; i < sessionCount; i++) {
    const session = sessions.open(String(1_000_000 + i), 'json', silentLink, []);
    for (let d = 0; d < buffer; d++) session.sendReadState(pool[(i + d) % STATE_POOL], undefined);
    open.push(session);
    if (i % 10_000 === 0) process.stderr.write(`rows: ${i} sessions\n`);
  }
  const fillSeconds = (performance.now() - started) / 1000;
  for (const session of open) sessions.detach(session, silentLink, 1006);
  const detachedAt = Date.now();
  open.length = 0;
  const stats = sessions.stats;
  if (stats.detached !== sessionCount || stats.bufferedDispatches !== sessionCount * buffer) throw new Error(`unexpected stats ${JSON.stringify(stats)}`);
  const held = measureHeld('rows', sessionCount, buffer, baseline, fillSeconds);

  // Expiry: the last session detached should end WINDOW_MS after it was detached.
  while (sessions.stats.sessions > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const expiryLateMs = Date.now() - detachedAt - WINDOW_MS;
  // Array buffers are freed by a sweeper after the GC that finds them dead: give it a moment.
  collect();
  await new Promise((resolve) => setTimeout(resolve, 200));
  collect();
  return { ...held, expiryLateMs, leftAfterExpiryMiB: round((footprint() - baseline) / MiB) };
}

/** The peer: each session keeps the frames it sent, as text, capped at `buffer`. */
function runFrames(sessionCount: number, buffer: number): Result {
  const pool = statePool();
  collect();
  const baseline = footprint();
  const started = performance.now();
  const kept: Frame[][] = [];
  for (let i = 0; i < sessionCount; i++) {
    const frames: Frame[] = [];
    for (let d = 0; d < buffer; d++) {
      // Kept as the text that was sent (the gateway builds it as bytes in a reused buffer).
      const frame = pool[(i + d) % STATE_POOL].frame('json', d + 2, undefined);
      frames.push(typeof frame === 'string' ? frame : Buffer.from(frame).toString('latin1'));
    }
    kept.push(frames);
    if (i % 1000 === 0) process.stderr.write(`frames: ${i} sessions\n`);
  }
  const result = measureHeld('frames', sessionCount, buffer, baseline, (performance.now() - started) / 1000);
  if (kept.length !== sessionCount) throw new Error('lost a session');
  return result;
}

function argValue(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}

function spawnDesign(design: Design, sessions: number, buffer: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--max-old-space-size=16384', fileURLToPath(import.meta.url), '--child', design, '--sessions', String(sessions), '--buffer', String(buffer)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Result) : reject(new Error(`${design} child exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const sessions = Number(argValue('--sessions', '100000'));
  const buffer = Number(argValue('--buffer', '1000'));
  const peerSessions = Number(argValue('--peer-sessions', String(Math.min(sessions, 10_000))));
  if (![sessions, buffer, peerSessions].every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new Error('usage: resume-memory --sessions N --buffer N [--peer-sessions N] [--json]');
  }
  const child = argValue('--child', '');
  if (child !== '') {
    const result = child === 'rows' ? await runRows(sessions, buffer) : runFrames(sessions, buffer);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const json = process.argv.includes('--json');
  const results: Result[] = [];
  for (const design of DESIGNS) {
    const count = design === 'rows' ? sessions : peerSessions;
    process.stderr.write(`${design}: ${count} sessions × ${buffer} dispatches\n`);
    const result = await spawnDesign(design, count, buffer);
    results.push(result);
    process.stdout.write(
      json
        ? `${JSON.stringify(result)}\n`
        : `${design}: ${result.bytesPerDispatch} B/dispatch, ${result.rssMiB} MiB RSS, full GC ${result.fullGcMs} ms${result.expiryLateMs === undefined ? '' : `, expired ${result.expiryLateMs} ms after the window`}\n`,
    );
  }
  const [rows, frames] = results;
  process.stdout.write(`${JSON.stringify({ ratio: { bytesPerDispatch: round(frames.bytesPerDispatch / rows.bytesPerDispatch, 2), fullGcMsPerSession: round(frames.fullGcMs / frames.sessions / (rows.fullGcMs / rows.sessions), 1) } })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
