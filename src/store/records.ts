// What the store persists and the interface every store implements (Cassandra in
// production, an in-memory fake in unit tests).
//
// Records carry what the engine needs to rebuild its state exactly: a read state holds the
// acked id and the mention bias (mention_count = mentionBias + the channel's everyoneCount,
// see engine/read-states.ts), and a channel holds its counts and its window of recent
// messages, so unread and mention counts stay exact across restarts.

import type { RecentWindow } from './recent-window.js';

export interface ReadStateRecord {
  userId: string;
  channelId: string;
  /** Newest message the user has read, or null. */
  lastAckedId: string | null;
  mentionBias: number;
  /** Seconds since the Unix epoch of the last pin seen; 0 when none. */
  pinnedAt: number;
}

export interface ChannelRecord {
  channelId: string;
  /** Messages ever posted. */
  messageCount: number;
  /** Messages ever posted with mention_everyone. */
  everyoneCount: number;
  /** The newest messages, oldest first (at most the engine's window size). */
  window: RecentWindow;
}

export interface WriteOptions {
  /** This call's requests in flight at once, at most (default: as many as the store allows). */
  maxInFlight?: number;
  /** The write's client timestamp (default: nextWriteMicros() when the call is made). */
  issuedAtMicros?: number;
}

export interface ReadStateStore {
  /** Every read state of the user: one per channel the user is a member of. */
  loadUserStates(userId: string): Promise<ReadStateRecord[]>;
  /** One read state, or null when the user is not a member of the channel. */
  loadState(userId: string, channelId: string): Promise<ReadStateRecord | null>;
  /** The channel, or null when it has never had a member. */
  loadChannel(channelId: string): Promise<ChannelRecord | null>;
  /** Upserts read states (idempotent: writing the same record twice is harmless). */
  writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void>;
  /** Removes a membership with its read state. */
  deleteState(userId: string, channelId: string, options?: WriteOptions): Promise<void>;
  /** Upserts channels. */
  writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void>;
  /** True when the store answers and its schema is in place. */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}
