// The store bench's event-loop sampler, and its peer: the same sampler on a worker thread. The
// worker has an event loop and a heap of its own, so neither the bench's work nor its GC
// delays it; what delays it is the machine (hypervisor steal, the co-located Cassandra
// node's threads). It splits its samples by the bench's "store write in flight" flag, read
// from shared memory, so both samplers are compared over the same moments. Needed because
// a host stall also lengthens the writes in flight, which files the stall under "during
// flushes" whatever the flush code costs.

import { createHistogram, type Histogram } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * Event-loop delay split by whether a store write is in flight. monitorEventLoopDelay
 * cannot be paused and resumed (the pause comes back as one sample as long as the pause),
 * so this is the same measurement done by hand: a 1 ms interval timer records the time
 * between its runs, like monitorEventLoopDelay with resolution 1, into one of two histograms.
 */
export class EventLoopDelayByFlushing {
  readonly duringFlushes = createHistogram();
  readonly betweenFlushes = createHistogram();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly isFlushing: () => boolean) {}

  start(): void {
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      (this.isFlushing() ? this.duringFlushes : this.betweenFlushes).record(Math.max(1, Math.round((now - last) * 1e6)));
      last = now;
    }, 1);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export interface PeerDelays {
  duringFlushesP99Ms: number;
  duringFlushesMaxMs: number;
  betweenFlushesP99Ms: number;
  samplesDuringFlushes: number;
}

/** Runs the sampler on a worker; `flushing` is set by the bench while a write is in flight. */
export class EventLoopPeer {
  readonly flushing = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker;
  private readonly ready: Promise<void>;

  constructor() {
    this.worker = new Worker(new URL(import.meta.url), { workerData: this.flushing.buffer });
    this.ready = new Promise((resolve) => this.worker.once('online', () => resolve()));
  }

  async start(): Promise<void> {
    await this.ready;
    this.worker.postMessage('start');
  }

  setFlushing(on: boolean): void {
    Atomics.store(this.flushing, 0, on ? 1 : 0);
  }

  async stop(): Promise<PeerDelays> {
    const result = new Promise<PeerDelays>((resolve) => this.worker.once('message', resolve));
    this.worker.postMessage('stop');
    const delays = await result;
    await this.worker.terminate();
    return delays;
  }
}

function runPeer(flushing: Int32Array): void {
  const delay = new EventLoopDelayByFlushing(() => Atomics.load(flushing, 0) === 1);
  parentPort!.on('message', (message: 'start' | 'stop') => {
    if (message === 'start') return delay.start();
    delay.stop();
    const during = delay.duringFlushes;
    const delays: PeerDelays = {
      duringFlushesP99Ms: p99Ms(during),
      duringFlushesMaxMs: during.count > 0 ? Math.round(during.max / 1e4) / 100 : 0,
      betweenFlushesP99Ms: p99Ms(delay.betweenFlushes),
      samplesDuringFlushes: during.count,
    };
    parentPort!.postMessage(delays);
  });
}

function p99Ms(histogram: Histogram): number {
  return histogram.count > 0 ? Math.round(histogram.percentile(99) / 1e4) / 100 : 0;
}

if (!isMainThread) runPeer(new Int32Array(workerData as SharedArrayBuffer));
