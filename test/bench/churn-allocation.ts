// Bytes allocated per miss on the churn path (load, insert, evict, write), and who allocates
// them: `npm run bench:churn-allocation -- --json`.
//
// A full table of --capacity states over a working set of 3x as many keys in Cassandra, the
// churn driver of the GC-spike benchmark (churn-load.ts) acking --rate keys a second, in this
// one process with no gateway and no sockets: what remains is the churn path alone. V8's
// sampling heap profiler, told to keep the objects that minor and major GCs collected, gives
// an estimate of every byte allocated in a window and the stack that allocated it. The peer is
// the same process over a window of the same length without churn (store and timers idle):
// bytes per miss = (churn window - idle window) / misses in the churn window. Allocation is
// counted, not timed, so the machine's noise does not decide the figure.
//
// Prints one JSON line: misses/s, bytes per miss, and the bytes per miss of each allocating
// owner (the innermost frame that is not Node's own: a package, or a function of this project).

import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { connectStore, createReadStates } from '../../src/read-state-service.js';
import { ChurnDriver, KeyLayout, postChurnMessages, seedWorkingSet } from './churn-load.js';

const { values: args } = parseArgs({
  options: {
    capacity: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    keyspace: { type: 'string', default: 'bench_churn_allocation' },
    /** The keyspace already holds the working set (an earlier run wrote it). */
    seeded: { type: 'boolean', default: false },
    top: { type: 'string', default: '12' },
    /** Name this package's allocating frames one by one (e.g. cassandra-driver) instead of as one owner. */
    expand: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
});

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Bytes allocated in the window, in all and by owner. */
interface WindowAllocation {
  total: number;
  byOwner: Map<string, number>;
}

/** The innermost frame that is not Node's own: `pkg <name>` for a dependency, `file:line function` for this project's code. */
function ownerOf(frame: ProfileNode['callFrame']): string | undefined {
  const { url, functionName, lineNumber } = frame;
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.+)\.js$/.exec(url);
  if (dependency !== null) return dependency[1] === args.expand ? `${dependency[1]}/${dependency[2]}:${lineNumber + 1} ${functionName || '(anonymous)'}` : `pkg ${dependency[1]}`;
  const own = /\/dist\/(.+)\.js$/.exec(url);
  if (own !== null) return `${own[1]}:${lineNumber + 1} ${functionName || '(anonymous)'}`;
  return undefined;
}

function summarise(head: ProfileNode): WindowAllocation {
  const byOwner = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode, owner: string) => {
    const here = ownerOf(node.callFrame) ?? owner;
    if (node.selfSize > 0) {
      total += node.selfSize;
      byOwner.set(here, (byOwner.get(here) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(head, 'node internals');
  return { total, byOwner };
}

async function sampleWindow(session: Session, seconds: number): Promise<WindowAllocation> {
  // Includes what scavenges and full GCs freed: the point is what was allocated, not what lived.
  await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  return summarise(profile.head);
}

async function main(): Promise<void> {
  const capacity = Number(args.capacity);
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  process.env.CASSANDRA_KEYSPACE = args.keyspace;
  process.env.READSTATE_CACHE_CAPACITY = String(capacity);
  const config = loadConfig();
  const log = pino({ level: 'warn' });
  const store = await connectStore(config, log);
  const readStates = createReadStates(config, store, log);
  const now = Date.now();
  const layout = new KeyLayout(3 * capacity, 1000);
  if (!args.seeded) await seedWorkingSet(store, layout, now, () => {});
  const message = postChurnMessages(readStates.engine.channels, layout, now);
  readStates.start();

  const session = new Session();
  session.connect();
  const idle = await sampleWindow(session, seconds);

  const churn = new ChurnDriver(readStates, layout, message, rate);
  churn.start();
  // Until the table is full and every code path (evicting, writing) has run a while.
  while (readStates.engine.table.size < capacity) await new Promise((resolve) => setTimeout(resolve, 250));
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const before = readStates.stats;
  const churning = await sampleWindow(session, seconds);
  const after = readStates.stats;
  churn.stop();
  session.disconnect();

  const misses = after.misses - before.misses;
  const perMiss = (bytes: number) => Math.round(bytes / misses);
  const owners = [...churning.byOwner.keys()].map((owner) => ({ owner, bytesPerMiss: perMiss((churning.byOwner.get(owner) ?? 0) - (idle.byOwner.get(owner) ?? 0)) }));
  owners.sort((a, b) => b.bytesPerMiss - a.bytesPerMiss);
  const result = {
    capacity,
    rate,
    seconds,
    missesPerSec: Math.round(misses / seconds),
    evictionsPerSec: Math.round((after.evictions - before.evictions) / seconds),
    storeWritesPerSec: Math.round((after.writes - before.writes) / seconds),
    idleBytesPerSec: Math.round(idle.total / seconds),
    churnBytesPerSec: Math.round(churning.total / seconds),
    bytesPerMiss: perMiss(churning.total - idle.total),
    byOwner: owners.slice(0, Number(args.top)),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(`${result.missesPerSec} misses/s, ${result.evictionsPerSec} evictions/s, ${result.storeWritesPerSec} store writes/s: ${result.bytesPerMiss} bytes allocated per miss\n`);
    for (const { owner, bytesPerMiss } of result.byOwner) process.stdout.write(`  ${String(bytesPerMiss).padStart(7)}  ${owner}\n`);
  }
  await readStates.stop();
  await store.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`churn-allocation: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
