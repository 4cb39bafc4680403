// CPU steal of this virtual machine, per second, from /proc/stat: time its vCPUs were ready
// to run while the hypervisor ran something else. On a shared VM it stalls every process in
// the guest at once, and nothing in the guest can avoid it, so the GC-spike bench records it
// beside each second's latency: a spike second with heavy steal is the host's, not the table's.

import { readFileSync } from 'node:fs';

interface CpuTicks {
  steal: number;
  total: number;
}

/** The machine-wide line of /proc/stat; undefined where there is none (not Linux). */
function readCpuTicks(): CpuTicks | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: guest time is already counted in user.
    return { steal: fields[7] ?? 0, total: fields.slice(0, 8).reduce((sum, n) => sum + n, 0) };
  } catch {
    return undefined;
  }
}

export class HostStealSampler {
  /** [epoch ms at the end of a one-second interval, steal as % of all CPU time in it] */
  readonly samples: [number, number][] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: CpuTicks | undefined;

  start(): void {
    this.last = readCpuTicks();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const now = readCpuTicks();
    if (now === undefined || this.last === undefined) return;
    const total = now.total - this.last.total;
    this.samples.push([Date.now(), total > 0 ? Math.round((1000 * (now.steal - this.last.steal)) / total) / 10 : 0]);
    this.last = now;
  }
}
