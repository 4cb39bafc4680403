import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PersistentReadStates } from '../../src/store/persistent-read-states.js';
import { InMemoryReadStateStore } from '../support/in-memory-read-state-store.js';

// Logic of load-on-miss and write-behind over the in-memory fake store, with fake timers.
// The same behaviour against a real Cassandra node is in test/integration/.

const ALICE = '9223372036854775809'; // above 2^63
const BOB = '18446744073709551615'; // 2^64 - 1
const CAROL = '1000000000000000001';
const DAVE = '1000000000000000002';
const CHAN = '175928847299117063';

function setup(opts: { capacity?: number; flushDelayMs?: number; maxPendingWrites?: number } = {}) {
  const store = new InMemoryReadStateStore();
  const states = new PersistentReadStates({
    store,
    capacity: opts.capacity ?? 100,
    flushDelayMs: opts.flushDelayMs ?? 30_000,
    workerId: 1,
    maxPendingWrites: opts.maxPendingWrites,
  });
  states.start();
  return { store, states };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('PersistentReadStates', () => {
  it('writes memberships through, and a changed state once, 30 s after its first change', async () => {
    const { store, states } = setup();
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    expect(store.stateWrites).toBe(2);
    const created = await states.createMessage(CHAN, ALICE, [BOB], false);
    if (created.code !== 0) throw new Error('create failed');
    for (let i = 0; i < 20; i++) await states.ack(BOB, CHAN, created.messageId);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(store.stateWrites).toBe(2);
    await vi.advanceTimersByTimeAsync(2_000);
    // Alice (author, acked) and Bob (mentioned, then acked 20 times): one write each.
    expect(store.stateWrites).toBe(4);
    expect(store.states.get(`${BOB}:${CHAN}`)).toMatchObject({ lastAckedId: created.messageId });
    expect(store.channels.get(CHAN)).toMatchObject({ messageCount: 1 });
    await states.stop();
  });

  it('counts a membership as written by its write-through: the window opens with the first change after it', async () => {
    const { store, states } = setup();
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    await vi.advanceTimersByTimeAsync(31_000);
    expect(store.stateWrites).toBe(2);
    await vi.advanceTimersByTimeAsync(9_000);
    const created = await states.createMessage(CHAN, ALICE, [BOB], false);
    if (created.code !== 0) throw new Error('create failed');
    // Joined 40 s ago, changed now: due 30 s from now, not at once.
    await vi.advanceTimersByTimeAsync(29_000);
    expect(store.stateWrites).toBe(2);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(store.stateWrites).toBe(4);
    await states.stop();
  });

  it('reports the new message to the author and the mentioned member', async () => {
    const { states } = setup();
    for (const u of [ALICE, BOB, CAROL]) await states.join(CHAN, u);
    const created = await states.createMessage(CHAN, ALICE, [BOB, BOB, '42'], false);
    if (created.code !== 0) throw new Error('create failed');
    expect([...created.changed.keys()].sort()).toEqual([ALICE, BOB].sort());
    expect(created.changed.get(BOB)).toEqual({ channel_id: CHAN, last_message_id: created.messageId, last_acked_id: null, unread_count: 1, mention_count: 1 });
    expect(states.viewOf(CAROL, CHAN)).toMatchObject({ unread_count: 1, mention_count: 0 });
    await states.stop();
  });

  it('answers errors: unknown channel, missing access, unknown message', async () => {
    const { states } = setup();
    await states.join(CHAN, ALICE);
    expect(await states.createMessage('5', ALICE, [], false)).toEqual({ code: 10003 });
    expect(await states.createMessage(CHAN, BOB, [], false)).toEqual({ code: 50001 });
    expect(await states.ack(ALICE, CHAN, '1')).toEqual({ code: 10008 });
    expect(await states.leave('5', ALICE)).toEqual({ code: 10003 });
    await states.stop();
  });

  it('writes a dirty state at once when it is evicted, and loads it back on a miss', async () => {
    const { store, states } = setup({ capacity: 2 });
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    const created = await states.createMessage(CHAN, ALICE, [BOB], false);
    if (created.code !== 0) throw new Error('create failed');
    const writesBefore = store.stateWrites;
    await states.join(CHAN, CAROL); // evicts the least recently used: Bob, dirty with a mention
    await vi.advanceTimersByTimeAsync(1);
    expect(store.stateWrites).toBeGreaterThan(writesBefore + 1);
    expect(store.states.get(`${BOB}:${CHAN}`)).toMatchObject({ mentionBias: 1 });
    expect(await states.view(BOB, CHAN)).toMatchObject({ unread_count: 1, mention_count: 1 });
    await states.stop();
  });

  it('keeps failed writes and retries them until the store is back; stop writes everything', async () => {
    const { store, states } = setup({ flushDelayMs: 1000 });
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    store.down = true;
    const created = await states.createMessage(CHAN, ALICE, [], false);
    if (created.code !== 0) throw new Error('create failed');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(states.ready).toBe(false);
    expect(states.stats.writeErrors).toBeGreaterThan(0);
    // Alice's ack from the create, waiting in the table (the drain takes due states only as it
    // sends them); Bob's join was written through and has not changed since.
    expect(states.stats.dirty + states.stats.pendingWrites).toBe(1);
    expect(states.stats.writeLagMs).toBeGreaterThan(3_000);
    store.down = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(states.ready).toBe(true);
    expect(store.states.get(`${ALICE}:${CHAN}`)).toMatchObject({ lastAckedId: created.messageId });
    expect(store.channels.get(CHAN)).toMatchObject({ messageCount: 1 });
    await states.ack(BOB, CHAN, created.messageId);
    const stopping = states.stop();
    await vi.advanceTimersByTimeAsync(100);
    await stopping;
    expect(store.states.get(`${BOB}:${CHAN}`)).toMatchObject({ lastAckedId: created.messageId });
  });

  it('trickles write-behind while it keeps up, and writes at full concurrency once behind or stopping', async () => {
    const { store, states } = setup({ flushDelayMs: 30_000 });
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    const sendMessage = async () => {
      const created = await states.createMessage(CHAN, ALICE, [BOB], false);
      if (created.code !== 0) throw new Error('create failed');
    };
    const optionsSince = (from: number) => store.writeOptions.slice(from);

    await sendMessage();
    let from = store.writeOptions.length;
    await vi.advanceTimersByTimeAsync(31_000);
    expect(optionsSince(from).length).toBeGreaterThan(0);
    expect(optionsSince(from)).toEqual(optionsSince(from).map(() => ({ maxInFlight: 2 })));
    expect(states.stats.writeLagMs).toBe(0);

    // Queued writes that waited more than a third of the window go out at full concurrency.
    await sendMessage();
    store.down = true;
    await vi.advanceTimersByTimeAsync(30_000 + 11_000);
    expect(states.stats.writeLagMs).toBeGreaterThan(10_000);
    from = store.writeOptions.length;
    store.down = false;
    await vi.advanceTimersByTimeAsync(6_000);
    expect(optionsSince(from).length).toBeGreaterThan(0);
    expect(optionsSince(from)).toEqual(optionsSince(from).map(() => undefined));
    expect(states.stats.writeLagMs).toBe(0);

    await sendMessage();
    from = store.writeOptions.length;
    await states.stop();
    expect(optionsSince(from).length).toBeGreaterThan(0);
    expect(optionsSince(from)).toEqual(optionsSince(from).map(() => undefined));
  });

  it('never drops a dirty state to make room while the store is down', async () => {
    const { store, states } = setup({ capacity: 2, maxPendingWrites: 1 });
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    await states.join(CHAN, CAROL);
    store.down = true;
    // Bob, Carol resident; both become dirty; only one may leave while the store is down.
    const created = await states.createMessage(CHAN, CAROL, [BOB], false);
    if (created.code !== 0) throw new Error('create failed');
    await expect(states.view(ALICE, CHAN)).rejects.toThrow(); // store down: the load fails
    expect(states.stats.size).toBe(2);
    expect(states.stats.dirty + states.stats.pendingWrites).toBe(2);
    store.down = false;
    await vi.advanceTimersByTimeAsync(31_000);
    expect(store.states.get(`${BOB}:${CHAN}`)).toMatchObject({ mentionBias: 1 });
    expect(store.states.get(`${CAROL}:${CHAN}`)).toMatchObject({ lastAckedId: created.messageId });
    await states.stop();
  });

  it('restores exact counts after a restart on the same store', async () => {
    const { store, states } = setup();
    for (const u of [ALICE, BOB]) await states.join(CHAN, u);
    let last = '';
    for (let i = 0; i < 5; i++) {
      const created = await states.createMessage(CHAN, ALICE, i % 2 === 0 ? [BOB] : [], i === 4);
      if (created.code !== 0) throw new Error('create failed');
      last = created.messageId;
    }
    const before = await states.loadUser(BOB);
    await states.stop();
    const restarted = new PersistentReadStates({ store, capacity: 100, flushDelayMs: 30_000, workerId: 1 });
    expect(await restarted.loadUser(BOB)).toEqual(before);
    // Bob joined the empty channel (nothing acked): all 5 unread; named in 3, once with @everyone.
    expect(before[0]).toMatchObject({ unread_count: 5, mention_count: 3, last_message_id: last });
    const next = await restarted.createMessage(CHAN, ALICE, [], false);
    if (next.code !== 0) throw new Error('create failed');
    expect(BigInt(next.messageId) > BigInt(last)).toBe(true);
    expect(restarted.viewOf(BOB, CHAN)).toMatchObject({ unread_count: 6, mention_count: 3 });
    await restarted.stop();
  });

  it('restores the newest messages, with whom they mention, when restarted with a smaller window', async () => {
    const store = new InMemoryReadStateStore();
    const states = new PersistentReadStates({ store, capacity: 100, flushDelayMs: 30_000, workerId: 1, windowSize: 8 });
    states.start();
    for (const u of [ALICE, BOB, CAROL]) await states.join(CHAN, u);
    // Messages 0, 3 and 6 name Carol, 11 names Bob, 10 is @everyone. Restarted with a window
    // of 4, only 8..11 are kept: Carol's mentions must be skipped, not shifted onto 11.
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const created = await states.createMessage(CHAN, ALICE, i === 11 ? [BOB] : i % 3 === 0 && i < 9 ? [CAROL] : [], i === 10);
      if (created.code !== 0) throw new Error('create failed');
      ids.push(created.messageId);
    }
    await states.ack(BOB, CHAN, ids[8]);
    await states.ack(CAROL, CHAN, ids[9]);
    const before = [states.viewOf(BOB, CHAN), states.viewOf(CAROL, CHAN)];
    expect(before).toMatchObject([
      { unread_count: 3, mention_count: 2 },
      { unread_count: 2, mention_count: 1 },
    ]);
    await states.stop();
    const restarted = new PersistentReadStates({ store, capacity: 100, flushDelayMs: 30_000, workerId: 1, windowSize: 4 });
    expect([(await restarted.loadUser(BOB))[0], (await restarted.loadUser(CAROL))[0]]).toEqual(before);
    // Acks recount mentions from the restored window: only message 11 is newer.
    expect(await restarted.ack(BOB, CHAN, ids[10])).toMatchObject({ state: { unread_count: 1, mention_count: 1 } });
    expect(await restarted.ack(CAROL, CHAN, ids[10])).toMatchObject({ state: { unread_count: 1, mention_count: 0 } });
    await restarted.createMessage(CHAN, ALICE, [CAROL], false);
    expect(restarted.viewOf(BOB, CHAN)).toMatchObject({ unread_count: 2, mention_count: 1 });
    expect(restarted.viewOf(CAROL, CHAN)).toMatchObject({ unread_count: 2, mention_count: 1 });
    await restarted.stop();
  });

  it('leave removes the state from memory and store and reports whether there was one', async () => {
    const { store, states } = setup();
    await states.join(CHAN, ALICE);
    expect(await states.leave(CHAN, ALICE)).toEqual({ code: 0, removed: true });
    expect(await states.leave(CHAN, ALICE)).toEqual({ code: 0, removed: false });
    expect(store.states.size).toBe(0);
    expect(await states.loadUser(ALICE)).toEqual([]);
    await states.stop();
  });
});

describe('PersistentReadStates membership lookups', () => {
  it('issues no write of a leaving state while its delete is pending, so the delete (older timestamp) cannot be overtaken', async () => {
    // Cassandra orders a row's writes by the timestamp taken when each is issued: a write
    // issued after the delete would bring the row back, whatever order they land in.
    const store = new (class extends InMemoryReadStateStore {
      gate: Promise<void> = Promise.resolve();
      open = () => {};
      deleting = false;
      writesWhileDeleting = 0;
      failDelete = false;
      override async writeStates(records: Parameters<InMemoryReadStateStore['writeStates']>[0]) {
        if (this.deleting && records.some((r) => r.userId === BOB)) this.writesWhileDeleting++;
        return super.writeStates(records);
      }
      override async deleteState(userId: string, channelId: string) {
        this.deleting = true;
        await this.gate;
        this.deleting = false;
        if (this.failDelete) throw new Error('delete timed out');
        return super.deleteState(userId, channelId);
      }
    })();
    const states = new PersistentReadStates({ store, capacity: 100, flushDelayMs: 1000, workerId: 1 });
    states.start();
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);

    for (const failDelete of [true, false]) {
      store.failDelete = failDelete;
      store.gate = new Promise((resolve) => (store.open = resolve));
      const leaving = states.leave(CHAN, BOB);
      // Bob is mentioned while his delete waits, and his flush window passes.
      await states.createMessage(CHAN, ALICE, [BOB], false);
      await vi.advanceTimersByTimeAsync(5000);
      expect(store.writesWhileDeleting).toBe(0);
      store.open();
      expect(await leaving).toMatchObject({ code: failDelete ? 4000 : 0 });
      await vi.advanceTimersByTimeAsync(5000);
      if (failDelete) {
        // Still a member, and the mention made while the delete failed is written after all.
        expect(store.states.get(`${BOB}:${CHAN}`)).toBeDefined();
        expect(states.viewOf(BOB, CHAN)).toMatchObject({ mention_count: 1 });
        expect(store.states.get(`${BOB}:${CHAN}`)?.mentionBias).toBe(1);
      }
    }
    expect(store.states.has(`${BOB}:${CHAN}`)).toBe(false);
    expect(states.viewOf(BOB, CHAN)).toBeUndefined();
    await states.stop();
  });

  it('asks the store once about a mentioned non-member, until it joins', async () => {
    const { store, states } = setup();
    await states.join(CHAN, ALICE);
    const loadsBefore = store.loads;
    for (let i = 0; i < 5; i++) await states.createMessage(CHAN, ALICE, [BOB], false);
    expect(store.loads - loadsBefore).toBe(1);
    await states.join(CHAN, BOB);
    const created = await states.createMessage(CHAN, ALICE, [BOB], false);
    if (created.code !== 0) throw new Error('create failed');
    expect(created.changed.get(BOB)).toMatchObject({ mention_count: 1 });
    await states.stop();
  });

  it('a left member is not a member, and can join again fully read', async () => {
    const { states } = setup();
    await states.join(CHAN, ALICE);
    await states.join(CHAN, BOB);
    await states.leave(CHAN, BOB);
    expect(await states.ack(BOB, CHAN, '1')).toEqual({ code: 50001 });
    const rejoined = await states.join(CHAN, BOB);
    expect(rejoined).toMatchObject({ code: 0, created: true, state: { unread_count: 0, mention_count: 0 } });
    await states.stop();
  });
});

describe('PersistentReadStates resident path', () => {
  it('answers from resident states in the same turn, and leaves anything that needs a load to the async path', async () => {
    const { states } = setup({ capacity: 3 });
    for (const u of [ALICE, BOB, CAROL]) await states.join(CHAN, u);
    const created = states.createResident(CHAN, ALICE, [BOB], false);
    if (created?.code !== 0) throw new Error('create failed');
    expect(created.changed.get(BOB)).toMatchObject({ mention_count: 1 });
    expect(states.ackResident(BOB, CHAN, created.messageId)).toEqual({
      code: 0,
      state: { channel_id: CHAN, last_message_id: created.messageId, last_acked_id: created.messageId, unread_count: 0, mention_count: 0 },
    });

    await states.join(CHAN, DAVE); // evicts one of the three
    const evicted = [ALICE, BOB, CAROL].find((u) => states.viewOf(u, CHAN) === undefined);
    if (evicted === undefined) throw new Error('nothing was evicted');
    expect(states.ackResident(evicted, CHAN, created.messageId)).toBeUndefined();
    // A mention of a member who is not resident is not dropped: nothing is applied until it is loaded.
    expect(states.createResident(CHAN, DAVE, [evicted], false)).toBeUndefined();
    expect(states.viewOf(DAVE, CHAN)).toMatchObject({ last_message_id: created.messageId, unread_count: 0 });
    const later = await states.createMessage(CHAN, DAVE, [evicted], false);
    if (later.code !== 0) throw new Error('create failed');
    expect(later.changed.get(evicted)).toMatchObject({ last_message_id: later.messageId, mention_count: 1 });
    await states.stop();
  });
});
