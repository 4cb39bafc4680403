import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEMO_CHANNELS, DEMO_USERS } from '../../src/demo/demo-directory.js';
import { seedDemo } from '../../src/demo/demo-seed.js';
import { LocalAdminOperations } from '../../src/gateway/admin-operations.js';
import { Dispatcher } from '../../src/gateway/dispatch.js';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { InMemoryReadStateStore } from '../support/in-memory-read-state-store.js';

// The demo's seed over the in-memory store fake: what each demo user starts with, and that
// it happens once and never in production.

const log = pino({ level: 'silent' });

/** The admin API's operations on `readStates`, as a gateway's (no session online). */
function operationsOn(readStates: PersistentReadStates): LocalAdminOperations {
  return new LocalAdminOperations(readStates, new Dispatcher(readStates, log));
}

function setup() {
  const store = new InMemoryReadStateStore();
  const readStates = new PersistentReadStates({ store, capacity: 1000, flushDelayMs: 0, workerId: 1 });
  readStates.start();
  return { store, readStates };
}

/** user name -> channel name -> [unread, mentions] */
async function badges(readStates: PersistentReadStates): Promise<Record<string, Record<string, [number, number]>>> {
  const result: Record<string, Record<string, [number, number]>> = {};
  for (const user of DEMO_USERS) {
    result[user.name] = {};
    for (const state of await readStates.loadUser(user.id)) {
      const channel = DEMO_CHANNELS.find((each) => each.id === state.channel_id)!;
      result[user.name][channel.name] = [state.unread_count, state.mention_count];
    }
  }
  return result;
}

describe('seedDemo', () => {
  it('gives every demo user its channels and a mix of unread, mentioned and read ones', async () => {
    const { readStates } = setup();
    expect(await seedDemo({ config: { nodeEnv: 'development' }, operations: operationsOn(readStates), log })).toBe(true);
    expect(await badges(readStates)).toEqual({
      Alice: { general: [3, 1], random: [1, 0], design: [1, 1] },
      Bob: { general: [3, 1], random: [0, 0], backend: [2, 1] },
      Carol: { general: [0, 0], random: [2, 0], backend: [2, 2] },
      Dave: { general: [1, 0], backend: [0, 0], design: [0, 0] },
    });
    await readStates.stop();
  });

  it('seeds once: a restart on seeded data posts nothing', async () => {
    const { store, readStates } = setup();
    await seedDemo({ config: { nodeEnv: 'development' }, operations: operationsOn(readStates), log });
    await readStates.stop();
    const channelsBefore = structuredClone([...store.channels.values()]);

    const restarted = new PersistentReadStates({ store, capacity: 1000, flushDelayMs: 0, workerId: 1 });
    restarted.start();
    expect(await seedDemo({ config: { nodeEnv: 'development' }, operations: operationsOn(restarted), log })).toBe(false);
    await restarted.stop();
    expect([...store.channels.values()]).toEqual(channelsBefore);
  });

  it('does nothing in production', async () => {
    const { store, readStates } = setup();
    expect(await seedDemo({ config: { nodeEnv: 'production' }, operations: operationsOn(readStates), log })).toBe(false);
    await readStates.stop();
    expect(store.states.size).toBe(0);
    expect(store.channels.size).toBe(0);
  });
});
