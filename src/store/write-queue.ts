// Records waiting for the store, in the order they were handed over, with when each began
// waiting: write-behind reads the longest wait to tell whether it is keeping up. Waits need
// not follow queue order (a due state is queued as of when it fell due, behind evictions
// queued as of now), so the oldest is looked for, not assumed first.
//
// A ring whose cells are cleared as items leave, growing only when fuller than ever before:
// an array that is spliced empty and pushed full again leaves copies of its storage behind,
// and an old-generation copy keeps the items it held alive through young-generation
// collections (see id-pair-map.ts).

const INITIAL_CAPACITY = 64;

export class WriteQueue<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(INITIAL_CAPACITY).fill(undefined);
  private queuedAt = new Float64Array(INITIAL_CAPACITY);
  /** Ring position of the first item. */
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** When the longest-waiting item began waiting; undefined when none waits. */
  get oldestQueuedAt(): number | undefined {
    return this.count === 0 ? undefined : this.earliest(this.count);
  }

  push(item: T, since: number): void {
    if (this.count === this.items.length) this.grow();
    const at = (this.head + this.count) % this.items.length;
    this.items[at] = item;
    this.queuedAt[at] = since;
    this.count++;
  }

  /** Removes the `count` first items (fewer when fewer wait); `since` receives when the longest-waiting of them began waiting. */
  take(count: number): { items: T[]; since: number } {
    const n = Math.min(count, this.count);
    const since = this.earliest(n);
    const taken: T[] = [];
    for (let i = 0; i < n; i++) {
      taken.push(this.items[this.head] as T);
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.items.length;
    }
    this.count -= n;
    return { items: taken, since };
  }

  /** Puts items taken earlier back in front, as waiting since `since` (a failed write retries first). */
  putBack(items: readonly T[], since: number): void {
    while (this.count + items.length > this.items.length) this.grow();
    for (let i = items.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + this.items.length) % this.items.length;
      this.items[this.head] = items[i];
      this.queuedAt[this.head] = since;
      this.count++;
    }
  }

  /** The earliest wait among the first `n` items (n ≥ 1). */
  private earliest(n: number): number {
    const capacity = this.items.length;
    let min = this.queuedAt[this.head];
    for (let i = 1; i < n; i++) {
      const at = this.queuedAt[(this.head + i) % capacity];
      if (at < min) min = at;
    }
    return min;
  }

  /** Twice the room, items moved to the front of a new ring; the old one is emptied (no stale references). */
  private grow(): void {
    const capacity = this.items.length;
    const items = new Array<T | undefined>(capacity * 2).fill(undefined);
    const queuedAt = new Float64Array(capacity * 2);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) % capacity;
      items[i] = this.items[from];
      queuedAt[i] = this.queuedAt[from];
    }
    this.items.fill(undefined);
    this.items = items;
    this.queuedAt = queuedAt;
    this.head = 0;
  }
}
