// Records waiting for the store, in the order they were handed over, with when each began
// waiting: write-behind reads the longest wait to tell whether it is keeping up. Waits need
// not follow queue order (a due state is queued as of when it fell due, behind evictions
// queued as of now), so the oldest is looked for, not assumed first.

export class WriteQueue<T> {
  private items: T[] = [];
  private queuedAt: number[] = [];

  get length(): number {
    return this.items.length;
  }

  /** When the longest-waiting item began waiting; undefined when none waits. */
  get oldestQueuedAt(): number | undefined {
    return this.items.length === 0 ? undefined : earliest(this.queuedAt, this.queuedAt.length);
  }

  push(item: T, since: number): void {
    this.items.push(item);
    this.queuedAt.push(since);
  }

  /** Removes the `count` first items (fewer when fewer wait); `since` receives when the longest-waiting of them began waiting. */
  take(count: number): { items: T[]; since: number } {
    const since = earliest(this.queuedAt, Math.min(count, this.queuedAt.length));
    this.queuedAt.splice(0, count);
    return { items: this.items.splice(0, count), since };
  }

  /** Puts items taken earlier back in front, as waiting since `since` (a failed write retries first). */
  putBack(items: readonly T[], since: number): void {
    this.items.unshift(...items);
    this.queuedAt.unshift(...items.map(() => since));
  }
}

function earliest(times: readonly number[], count: number): number {
  let min = times[0];
  for (let i = 1; i < count; i++) if (times[i] < min) min = times[i];
  return min;
}
