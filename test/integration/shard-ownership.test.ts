// Shard hand-over between nodes, on a real NATS server: three ShardOwnerships in one process
// (no gateways, no Cassandra), so each step of a join or a clean leave is observed in order.
// The hooks record what each node was asked to release and when it started serving.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ShardHooks, ShardOwnership } from '../../src/cluster/shard-ownership.js';
import { NATS_URL } from '../support/cluster-harness.js';
import { waitUntil } from '../support/cassandra-nodes.js';

const SHARDS = 64;
const OPTIONS = { shards: SHARDS, heartbeatMs: 100, expireMs: 300, handoffTimeoutMs: 20_000 };

interface TestNode {
  id: number;
  ownership: ShardOwnership;
  nc: NatsConnection;
  /** Releases this node was asked for; while `holdReleases`, each waits for the test to call done(). */
  releases: Array<{ shards: ReadonlySet<number>; done: () => void }>;
  holdReleases: boolean;
}

const open: TestNode[] = [];
let prefix = '';

async function startNode(id: number, holdReleases = false): Promise<TestNode> {
  const nc = await connect({ servers: NATS_URL });
  const hooks: ShardHooks = {
    release: (shards) =>
      new Promise((resolve) => {
        node.releases.push({ shards, done: resolve });
        if (!node.holdReleases) resolve();
      }),
    gained: () => {},
  };
  const ownership = new ShardOwnership(nc, prefix, { id, url: `ws://node-${id}` }, OPTIONS, hooks, pino({ level: 'silent' }));
  const node: TestNode = { id, ownership, nc, releases: [], holdReleases };
  open.push(node);
  ownership.start();
  await new Promise<void>((resolve) => ownership.onReady(resolve));
  return node;
}

function liveNodes(node: TestNode): number[] {
  return node.ownership.shardMap?.nodes.slice() ?? [];
}

function shardsOwnedBy(node: TestNode, owner: number): number[] {
  const map = node.ownership.shardMap;
  const shards: number[] = [];
  for (let shard = 0; shard < SHARDS; shard++) if (map?.ownerOf(shard) === owner) shards.push(shard);
  return shards;
}

afterEach(async () => {
  for (const node of open.splice(0)) {
    node.holdReleases = false;
    for (const release of node.releases) release.done();
    await node.ownership.stop();
    await node.nc.close();
  }
});

describe('shard hand-over over NATS', () => {
  it('a leaving node\u2019s shards are served by the others only after its last write, not on an older hand-off', async () => {
    prefix = `it_shards_${process.pid}_${Date.now()}`;
    const nodes = [await startNode(1), await startNode(2), await startNode(3)];
    await waitUntil('three nodes in every map', () => nodes.every((node) => liveNodes(node).join() === '1,2,3'), 10_000);
    // Each node has published a hand-off for the map [1, 2, 3] by now: the older hand-off a receiver must not take for the last one.
    const [first, , leaving] = nodes;
    const taken = shardsOwnedBy(first, 3);
    leaving.ownership.leave();
    await waitUntil('node 1 drops the leaving node from its map', () => liveNodes(first).join() === '1,2', 10_000);
    const gained = taken.filter((shard) => first.ownership.shardMap?.ownerOf(shard) === 1);
    expect(gained.length).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Node 3 has not written its states yet (stop() not called): node 1 must keep waiting.
    expect(gained.filter((shard) => first.ownership.serves(shard))).toEqual([]);
    await leaving.ownership.stop();
    open.splice(open.indexOf(leaving), 1);
    await leaving.nc.close();
    await waitUntil('node 1 serves what node 3 handed over', () => gained.every((shard) => first.ownership.serves(shard)), 5000);
  });

  it('a joining node serves the shards it takes only once their old owner released them', async () => {
    prefix = `it_shards_${process.pid}_${Date.now()}`;
    const first = await startNode(1, true);
    const joining = await startNode(2);
    await waitUntil('both nodes in both maps', () => liveNodes(first).join() === '1,2' && liveNodes(joining).join() === '1,2', 10_000);
    const moved = shardsOwnedBy(joining, 2);
    expect(moved.length).toBeGreaterThan(0);
    await waitUntil('node 1 asked to release', () => first.releases.length === 1, 5000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(moved.filter((shard) => joining.ownership.serves(shard))).toEqual([]);
    first.releases[0].done();
    await waitUntil('node 2 serves its shards after the release', () => moved.every((shard) => joining.ownership.serves(shard)), 5000);
  });
});
