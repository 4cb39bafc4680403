// The read-state service without its network front: engine + PersistentReadStates +
// CassandraReadStateStore in a child process, driven over IPC by a test that wants to kill
// it (kill -9) in the middle of its work. Runs compiled (see compile-child.ts).
//
// Environment: CASSANDRA_CONTACT_POINTS, CASSANDRA_KEYSPACE, READSTATE_FLUSH_DELAY_MS.
// Messages in: ServiceRequest. Messages out: { ready: true } once started, then one
// ServiceReply per request, in the order the requests finish.

import { CassandraReadStateStore } from '../../src/store/cassandra-store.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';

export type ServiceCommand =
  | { op: 'join'; channelId: string; userId: string }
  | { op: 'post'; channelId: string; authorId: string; mentions: string[] }
  | { op: 'ack'; channelId: string; userId: string; messageId: string };

/** A command with the id its reply carries. */
export type ServiceRequest = ServiceCommand & { id: number };

/** code 0 on success (messageId set for a post), else the protocol's error code. */
export interface ServiceReply {
  id: number;
  code: number;
  messageId?: string;
}

async function main(): Promise<void> {
  const send = (message: object) => process.send?.(message);
  const store = await CassandraReadStateStore.connect({
    contactPoints: (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(','),
    keyspace: process.env.CASSANDRA_KEYSPACE ?? 'readstates',
  });
  const states = new PersistentReadStates({
    store,
    capacity: 100_000,
    flushDelayMs: Number(process.env.READSTATE_FLUSH_DELAY_MS ?? 30_000),
    workerId: 1,
  });
  states.start();

  process.on('message', (request: ServiceRequest) => {
    void handle(request).then(send, (error: unknown) => {
      process.stderr.write(`service-child: ${String(error)}\n`);
      send({ id: request.id, code: 4000 } satisfies ServiceReply);
    });
  });
  // The parent going away ends the child; a kill -9 of the child is the point of it.
  process.on('disconnect', () => void states.stop().then(() => store.close()).finally(() => process.exit(0)));
  send({ ready: true });

  async function handle(request: ServiceRequest): Promise<ServiceReply> {
    switch (request.op) {
      case 'join':
        return { id: request.id, code: (await states.join(request.channelId, request.userId)).code };
      case 'post': {
        const result = await states.createMessage(request.channelId, request.authorId, request.mentions, false);
        return result.code === 0 ? { id: request.id, code: 0, messageId: result.messageId } : { id: request.id, code: result.code };
      }
      case 'ack':
        return { id: request.id, code: (await states.ack(request.userId, request.channelId, request.messageId)).code };
    }
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`service-child failed to start: ${String(error)}\n`);
  process.exit(1);
});
