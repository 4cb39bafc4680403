// Which node owns which shard (docs/protocol.md "Cluster"): a user belongs to shard
// user_id mod shards, a channel to channel_id mod shards, and each shard to one live node,
// chosen by rendezvous hashing: every node scores every shard and the highest score owns it.
// Every node that sees the same set of live nodes computes the same map, with no
// coordinator; and a node that joins or leaves changes the owner of only the shards it wins
// or held (about 1/N of them), so nothing else moves.
//
// Pure: no I/O, no clock. Membership (node-membership.ts) feeds it the live node ids.

import { parseSnowflake } from '../engine/snowflake.js';

/** 2^32 mod n, so that (hi * 2^32 + lo) mod n needs no BigInt. */
function wordModulus(n: number): number {
  return 2 ** 32 % n;
}

/** The shard of a snowflake given as its 32-bit halves. */
export function shardOfHalves(hi: number, lo: number, shards: number): number {
  return ((hi % shards) * wordModulus(shards) + (lo % shards)) % shards;
}

const scratch = new Uint32Array(2);

/** The shard of a snowflake id in decimal text; -1 when the text is not a snowflake. */
export function shardOfId(id: string, shards: number): number {
  return parseSnowflake(id, scratch, 0) ? shardOfHalves(scratch[0], scratch[1], shards) : -1;
}

/** A node's rendezvous score for a shard: a 32-bit mix of the two numbers (murmur3 finaliser). */
function score(nodeId: number, shard: number): number {
  let h = Math.imul(nodeId ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(shard + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class ShardMap {
  /** Owner node id per shard; -1 when no node is live. */
  readonly owners: Int32Array;

  constructor(
    readonly shards: number,
    /** Live node ids, in any order. */
    readonly nodes: readonly number[],
  ) {
    this.owners = new Int32Array(shards).fill(-1);
    for (let shard = 0; shard < shards; shard++) {
      let best = -1;
      let bestScore = -1;
      for (const node of nodes) {
        const s = score(node, shard);
        // Ties (rare) go to the lower id, so the map does not depend on the order of `nodes`.
        if (s > bestScore || (s === bestScore && node < best)) {
          best = node;
          bestScore = s;
        }
      }
      this.owners[shard] = best;
    }
  }

  ownerOf(shard: number): number {
    return this.owners[shard];
  }

  /** Shards owned by `node`. */
  shardsOf(node: number): number {
    let count = 0;
    for (let shard = 0; shard < this.shards; shard++) if (this.owners[shard] === node) count++;
    return count;
  }
}
