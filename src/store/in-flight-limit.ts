// Bounds how many requests one store has in flight. A flush of 100,000 read states becomes
// thousands of requests; sent all at once they would fill the driver's queues and the
// node's, and time out together. Waiting tasks start in the order they arrived.

export class InFlightLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`in-flight limit must be a positive integer, got ${max}`);
  }

  /** Runs `task` once fewer than `max` tasks are running; settles as the task does. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer jump the queue.
      const next = this.waiting.shift();
      if (next === undefined) this.running--;
      else next();
    }
  }
}
