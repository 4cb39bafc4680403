// An in-memory fake of ReadStateStore for unit tests of logic that sits on a store. It can be
// taken "down" (every call rejects) to exercise retries. Not used against real data: the
// integration tests talk to a real Cassandra node.

import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from '../../src/store/records.js';

export class InMemoryReadStateStore implements ReadStateStore {
  readonly states = new Map<string, ReadStateRecord>();
  readonly channels = new Map<string, ChannelRecord>();
  down = false;
  stateWrites = 0;
  channelWrites = 0;
  loads = 0;
  /** The options of every successful writeStates/writeChannels call, in order. */
  readonly writeOptions: Array<WriteOptions | undefined> = [];

  async loadUserStates(userId: string): Promise<ReadStateRecord[]> {
    this.check();
    this.loads++;
    return [...this.states.values()].filter((r) => r.userId === userId).map((r) => ({ ...r }));
  }

  async loadState(userId: string, channelId: string): Promise<ReadStateRecord | null> {
    this.check();
    this.loads++;
    const record = this.states.get(`${userId}:${channelId}`);
    return record === undefined ? null : { ...record };
  }

  async loadChannel(channelId: string): Promise<ChannelRecord | null> {
    this.check();
    const record = this.channels.get(channelId);
    return record === undefined ? null : structuredClone(record);
  }

  async writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void> {
    this.check();
    for (const r of records) this.states.set(`${r.userId}:${r.channelId}`, { ...r });
    this.stateWrites += records.length;
    this.writeOptions.push(options);
  }

  async deleteState(userId: string, channelId: string): Promise<void> {
    this.check();
    this.states.delete(`${userId}:${channelId}`);
  }

  async writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void> {
    this.check();
    for (const r of records) this.channels.set(r.channelId, structuredClone(r));
    this.channelWrites += records.length;
    this.writeOptions.push(options);
  }

  async isReady(): Promise<boolean> {
    return !this.down;
  }

  async close(): Promise<void> {}

  private check(): void {
    if (this.down) throw new Error('in-memory store is down');
  }
}
