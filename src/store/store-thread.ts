// The Cassandra store on a worker thread of its own, driven by StoreThreadClient (store-thread-client.ts).
//
// Why a thread: the driver allocates tens of kilobytes per request (routing token, query plan,
// frame writers, result rows), all dead within the request. On the gateway's thread that was
// most of its garbage under churn (about 80 MB/s at 2,300 misses a second) and the young and
// full collections it set off paused every socket. Here that garbage lives and dies in this
// thread's own heap, collected without stopping the gateway's event loop; only the records
// cross, copied by postMessage; calls arrive in lists, and the answers ready in one turn leave
// as one list (see store-thread-client.ts).

import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { CassandraReadStateStore } from './cassandra-store.js';
import type { StoreAnswer, StoreCall, StoreThreadData, StoreThreadMessage } from './store-thread-client.js';

const port = parentPort!;
const { options, logLevel } = workerData as StoreThreadData;
const log = pino({ level: logLevel }).child({ thread: 'store' });

function post(message: StoreThreadMessage): void {
  port.postMessage(message);
}

let answers: StoreAnswer[] = [];

function answer(reply: StoreAnswer): void {
  if (answers.length === 0) {
    queueMicrotask(() => {
      const ready = answers;
      answers = [];
      post(ready);
    });
  }
  answers.push(reply);
}

function failureOf(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

CassandraReadStateStore.connect({ ...options, log }).then(
  (store) => {
    port.on('message', (calls: StoreCall[]) => {
      for (const call of calls) {
        (store[call.method] as (...args: unknown[]) => Promise<unknown>).apply(store, call.args).then(
          (result) => answer({ id: call.id, result }),
          (error: unknown) => answer({ id: call.id, error: failureOf(error) }),
        );
      }
    });
    post({ ready: true });
  },
  (error: unknown) => post({ ready: false, error: failureOf(error) }),
);
