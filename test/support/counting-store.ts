// Counts what reaches a real ReadStateStore, so tests and benchmarks can tell how many
// writes and loads the write-behind layer made and when. Every call goes through to the
// wrapped store unchanged: this observes, it does not fake.

import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from '../../src/store/records.js';

export interface StateWrite {
  record: ReadStateRecord;
  /** Date.now() when the write call was made. */
  at: number;
}

export class CountingReadStateStore implements ReadStateStore {
  /** Read-state records handed to writeStates, in call order (failed calls included). */
  readonly stateWrites: StateWrite[] = [];
  channelWrites = 0;
  /** loadState calls (loads on miss of one read state). */
  stateLoads = 0;
  private stateWritesCounted = 0;

  constructor(
    readonly inner: ReadStateStore,
    /** Keep every written record (tests); off, only the count is kept (benchmarks). */
    private readonly keepRecords = true,
  ) {}

  /** Read-state records written so far. */
  get stateWriteCount(): number {
    return this.keepRecords ? this.stateWrites.length : this.stateWritesCounted;
  }

  /** Writes of one read state, oldest first. */
  writesOf(userId: string, channelId: string): StateWrite[] {
    return this.stateWrites.filter((w) => w.record.userId === userId && w.record.channelId === channelId);
  }

  loadUserStates(userId: string): Promise<ReadStateRecord[]> {
    return this.inner.loadUserStates(userId);
  }

  loadState(userId: string, channelId: string): Promise<ReadStateRecord | null> {
    this.stateLoads++;
    return this.inner.loadState(userId, channelId);
  }

  loadChannel(channelId: string): Promise<ChannelRecord | null> {
    return this.inner.loadChannel(channelId);
  }

  writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void> {
    if (this.keepRecords) {
      const at = Date.now();
      for (const record of records) this.stateWrites.push({ record: { ...record }, at });
    } else {
      this.stateWritesCounted += records.length;
    }
    return this.inner.writeStates(records, options);
  }

  deleteState(userId: string, channelId: string): Promise<void> {
    return this.inner.deleteState(userId, channelId);
  }

  writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void> {
    this.channelWrites += records.length;
    return this.inner.writeChannels(records, options);
  }

  isReady(): Promise<boolean> {
    return this.inner.isReady();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
