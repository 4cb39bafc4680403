// Records waiting for the store, oldest first, with when each was queued: write-behind reads
// the age of the oldest to tell whether it is keeping up.

export class WriteQueue<T> {
  private items: T[] = [];
  private queuedAt: number[] = [];

  get length(): number {
    return this.items.length;
  }

  /** When the oldest waiting item was queued; undefined when none waits. */
  get oldestQueuedAt(): number | undefined {
    return this.queuedAt[0];
  }

  push(item: T, now: number): void {
    this.items.push(item);
    this.queuedAt.push(now);
  }

  /** Removes the `count` oldest items (fewer when fewer wait); `since` receives when the first of them was queued. */
  take(count: number): { items: T[]; since: number } {
    const since = this.queuedAt[0];
    this.queuedAt.splice(0, count);
    return { items: this.items.splice(0, count), since };
  }

  /** Puts items taken earlier back in front, as queued at `since` (a failed write retries first). */
  putBack(items: readonly T[], since: number): void {
    this.items.unshift(...items);
    this.queuedAt.unshift(...items.map(() => since));
  }
}
