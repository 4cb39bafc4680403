// The CPU priority of a benchmark's own processes against everything else on the machine,
// above all the Cassandra node beside them (`--nice`).
//
// With autogroup scheduling (the default on desktop-configured kernels, and on this machine's),
// the kernel first shares the CPU between sessions, and a process's nice value only ranks it
// inside its own session: `nice -n` alone would not put a benchmark's servers and load ahead of
// the Cassandra node, which infra/cassandra/start.sh runs in a session of its own. The session's
// autogroup nice does, and a benchmark's children are in its session. Lowering it needs root.

import { readFileSync, writeFileSync } from 'node:fs';

/** Sets this session's autogroup nice; says why on stderr when it cannot. */
export function setSessionNice(nice: number, benchName: string): void {
  try {
    if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') return;
    writeFileSync('/proc/self/autogroup', String(nice));
  } catch (error) {
    console.error(`[${benchName}] could not set the session's autogroup nice to ${nice}: ${(error as Error).message}`);
  }
}
