// The shard map (src/cluster/shard-map.ts): every node computes the same owners from the
// same live set, the shares are even, and a join or loss moves only that node's share.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShardMap, shardOfHalves, shardOfId } from '../../src/cluster/shard-map.js';

const SHARDS = 1024;

describe('shardOfId', () => {
  it('is the id mod the shard count, for ids across the whole 64-bit range', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: 1, max: 65_536 }), (id, shards) => {
        expect(shardOfId(id.toString(), shards)).toBe(Number(id % BigInt(shards)));
        expect(shardOfHalves(Number(id >> 32n), Number(id & 0xffffffffn), shards)).toBe(Number(id % BigInt(shards)));
      }),
    );
  });

  it('refuses what is not a snowflake', () => {
    for (const bad of ['', 'abc', '-1', '18446744073709551616', '1'.repeat(21)]) expect(shardOfId(bad, SHARDS)).toBe(-1);
  });
});

describe('ShardMap', () => {
  const nodeSets = fc.uniqueArray(fc.integer({ min: 0, max: 1023 }), { minLength: 1, maxLength: 12 });

  it('does not depend on the order nodes are listed in', () => {
    fc.assert(
      fc.property(nodeSets, (nodes) => {
        expect(new ShardMap(SHARDS, nodes).owners).toEqual(new ShardMap(SHARDS, [...nodes].reverse()).owners);
      }),
      { numRuns: 50 },
    );
  });

  it('gives each of N nodes about 1/N of the shards', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 1023 }), { minLength: 2, maxLength: 8 }), (nodes) => {
        const map = new ShardMap(SHARDS, nodes);
        for (const node of nodes) {
          const share = map.shardsOf(node) / SHARDS;
          expect(share).toBeGreaterThan(0.5 / nodes.length);
          expect(share).toBeLessThan(1.6 / nodes.length);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('moves only the shards of a node that leaves, and only shards to a node that joins', () => {
    fc.assert(
      fc.property(nodeSets, fc.integer({ min: 0, max: 1023 }), (nodes, extra) => {
        fc.pre(!nodes.includes(extra));
        const before = new ShardMap(SHARDS, nodes);
        const after = new ShardMap(SHARDS, [...nodes, extra]);
        for (let shard = 0; shard < SHARDS; shard++) {
          // Joining: a shard either stays or goes to the newcomer. Leaving is the same, read backwards.
          if (after.ownerOf(shard) !== before.ownerOf(shard)) expect(after.ownerOf(shard)).toBe(extra);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('has no owner without nodes', () => {
    expect(new ShardMap(4, []).ownerOf(0)).toBe(-1);
  });
});
