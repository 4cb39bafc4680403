// The ReadStateStore the gateway uses: every call goes to the Cassandra store running on a
// worker thread (store-thread.ts), its records copied across by postMessage. Why a thread:
// see store-thread.ts. Calls are answered in any order, matched by id. The calls made in one
// synchronous stretch cross as one message, and so do the answers the thread has in one turn:
// a miss storm makes thousands of calls a second, and every message costs both threads an
// envelope, an event and a copy's set-up (about 500 of the 4,860 bytes the gateway's thread
// allocated per miss when each call was a message of its own).
//
// If the thread dies (a defect in the driver, out of memory), every call in flight and every
// later call fails with StoreThreadGone: the read-state layer treats that as a store outage
// (retries, /readyz 503), and the log says why. The process is left for its supervisor to
// restart rather than restarting the thread behind the engine's back.

import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CassandraStoreOptions } from './cassandra-store.js';
import type { ChannelRecord, ReadStateRecord, ReadStateStore, WriteOptions } from './records.js';
import { nextWriteMicros } from './write-clock.js';

type StoreMethod = 'loadUserStates' | 'loadState' | 'loadChannel' | 'writeStates' | 'deleteState' | 'writeChannels' | 'isReady' | 'close';

export interface StoreCall {
  id: number;
  method: StoreMethod;
  args: unknown[];
}

export type StoreAnswer = { id: number; result: unknown } | { id: number; error: { name: string; message: string } };

/** The thread's first message says whether it connected; every later one is a list of answers. */
export type StoreThreadMessage = { ready: true } | { ready: false; error: { name: string; message: string } } | StoreAnswer[];

export interface StoreThreadData {
  options: Omit<CassandraStoreOptions, 'log'>;
  logLevel: string;
}

export class StoreThreadGone extends Error {
  constructor(reason: string) {
    super(`store thread gone: ${reason}`);
    this.name = 'StoreThreadGone';
  }
}

/** The error the thread reported, with its name and message (the stack stays in the thread's log). */
function errorOf(failure: { name: string; message: string }): Error {
  const error = new Error(failure.message);
  error.name = failure.name;
  return error;
}

function stamped(options: WriteOptions | undefined): WriteOptions {
  return { ...options, issuedAtMicros: options?.issuedAtMicros ?? nextWriteMicros() };
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class StoreThreadClient implements ReadStateStore {
  /**
   * Calls awaiting their answer, by id; an id is the call's cell here, reused once answered.
   * Not a Map: one that fills and empties with every batch of calls rebuilds its table each
   * time, and an old-generation table left behind keeps the callbacks it held, and all they
   * reach, alive through young-generation collections (see id-pair-map.ts).
   */
  private readonly pending: (Pending | undefined)[] = [];
  private readonly freeIds: number[] = [];
  /** Calls made since the last message to the thread. */
  private outgoing: StoreCall[] = [];
  private gone: StoreThreadGone | null = null;

  private constructor(private readonly worker: Worker) {}

  /**
   * Starts the thread and connects it (schema included); rejects as CassandraReadStateStore.connect would.
   * `threadUrl` is for tests that run from the TypeScript sources: the compiled store-thread.js.
   */
  static connect(options: CassandraStoreOptions, threadUrl: URL = new URL('./store-thread.js', import.meta.url)): Promise<StoreThreadClient> {
    const { log, ...threadOptions } = options;
    const data: StoreThreadData = { options: threadOptions, logLevel: log?.level ?? 'silent' };
    const worker = new Worker(threadUrl, { workerData: data });
    return new Promise((resolve, reject) => {
      const failed = (error: Error) => {
        void worker.terminate();
        reject(error);
      };
      worker.once('error', failed);
      worker.once('message', (message: StoreThreadMessage) => {
        worker.off('error', failed);
        if (Array.isArray(message)) return failed(new Error('store thread: unexpected first message'));
        if (!message.ready) return failed(errorOf(message.error));
        resolve(new StoreThreadClient(worker).listen(log));
      });
    });
  }

  loadUserStates(userId: string): Promise<ReadStateRecord[]> {
    return this.call('loadUserStates', [userId]) as Promise<ReadStateRecord[]>;
  }

  loadState(userId: string, channelId: string): Promise<ReadStateRecord | null> {
    return this.call('loadState', [userId, channelId]) as Promise<ReadStateRecord | null>;
  }

  loadChannel(channelId: string): Promise<ChannelRecord | null> {
    return this.call('loadChannel', [channelId]) as Promise<ChannelRecord | null>;
  }

  // Writes are stamped here, on the caller's thread: the thread takes messages from every
  // store of the process in no common order, and the stamp must follow the order of the calls.

  writeStates(records: readonly ReadStateRecord[], options?: WriteOptions): Promise<void> {
    return this.call('writeStates', [records, stamped(options)]) as Promise<void>;
  }

  deleteState(userId: string, channelId: string, options?: WriteOptions): Promise<void> {
    return this.call('deleteState', [userId, channelId, stamped(options)]) as Promise<void>;
  }

  writeChannels(records: readonly ChannelRecord[], options?: WriteOptions): Promise<void> {
    return this.call('writeChannels', [records, stamped(options)]) as Promise<void>;
  }

  /** Never throws, as the store's own: a thread that is gone is not ready. */
  isReady(): Promise<boolean> {
    return (this.call('isReady', []) as Promise<boolean>).catch(() => false);
  }

  async close(): Promise<void> {
    if (this.gone === null) await this.call('close', []);
    this.gone ??= new StoreThreadGone('closed');
    await this.worker.terminate();
  }

  private listen(log: Logger | undefined): this {
    this.worker.on('message', (message: StoreThreadMessage) => {
      if (!Array.isArray(message)) return;
      for (const answer of message) {
        const pending = this.pending[answer.id];
        if (pending === undefined) continue;
        this.pending[answer.id] = undefined;
        this.freeIds.push(answer.id);
        if ('error' in answer) pending.reject(errorOf(answer.error));
        else pending.resolve(answer.result);
      }
    });
    this.worker.on('error', (error) => {
      log?.error({ err: error }, 'store thread failed: every store call fails from now on');
      this.fail(new StoreThreadGone(error.message));
    });
    this.worker.on('exit', (code) => this.fail(new StoreThreadGone(`exited with code ${code}`)));
    return this;
  }

  private call(method: StoreMethod, args: unknown[]): Promise<unknown> {
    if (this.gone !== null) return Promise.reject(this.gone);
    const id = this.freeIds.pop() ?? this.pending.length;
    return new Promise((resolve, reject) => {
      this.pending[id] = { resolve, reject };
      if (this.outgoing.length === 0) queueMicrotask(this.sendOutgoing);
      this.outgoing.push({ id, method, args });
    });
  }

  private readonly sendOutgoing = (): void => {
    const calls = this.outgoing;
    this.outgoing = [];
    this.worker.postMessage(calls);
  };

  private fail(reason: StoreThreadGone): void {
    this.gone ??= reason;
    for (const pending of this.pending) pending?.reject(this.gone);
    this.pending.length = 0;
    this.freeIds.length = 0;
  }
}
