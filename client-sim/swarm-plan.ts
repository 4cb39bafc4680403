// The shape of a simulated swarm, decided up front from a seed: user and channel ids,
// channel sizes following a power law (a few huge channels, a long tail of small ones),
// who is a member of what, and how many devices each user has online.

import { SeededRandom } from './random.js';

export interface SwarmShape {
  users: number;
  channels: number;
  /** Members of the largest channel (rank 1). */
  maxChannelSize: number;
  /** No channel is smaller than this. */
  minChannelSize: number;
  /** Channel of rank r has maxChannelSize * r^-sizeExponent members (Zipf for 1). */
  sizeExponent: number;
  /** Fraction of users that are online at all. */
  onlineFraction: number;
  /** Fraction of online users with more than one device. */
  multiDeviceFraction: number;
  /** Most devices a multi-device user has (at least 2). */
  maxDevices: number;
  seed: number;
  /** User i is idBase + i; channel j is idBase + 2^32 + j. */
  idBase: bigint;
}

export interface SwarmPlan {
  shape: SwarmShape;
  userIds: string[];
  channelIds: string[];
  /** members[c]: user indices of channel c, in no particular order. */
  members: number[][];
  /** devices[u]: sessions user u keeps open (0 = offline). */
  devices: Uint8Array;
  /** Sum over channels of their sizes: the read states the swarm creates. */
  memberships: number;
}

/** The largest id base that still leaves room for every user and channel below 2^64. */
const MAX_ID_BASE = (1n << 64n) - (1n << 33n);

/** A random id base above 2^60, so ids exercise the full 64-bit range and runs rarely collide. */
export function randomIdBase(): bigint {
  const random = new SeededRandom(Date.now() ^ (process.pid << 16));
  return (1n << 60n) + (BigInt(random.below(2 ** 27)) << 33n);
}

export function planSwarm(shape: SwarmShape): SwarmPlan {
  const { users, channels } = shape;
  if (!(users >= 2 && channels >= 1 && shape.minChannelSize >= 1 && shape.maxChannelSize >= shape.minChannelSize)) {
    throw new RangeError('need users >= 2, channels >= 1, 1 <= min channel size <= max channel size');
  }
  if (shape.maxChannelSize > users) throw new RangeError(`max channel size ${shape.maxChannelSize} exceeds the ${users} users`);
  if (shape.idBase < 1n || shape.idBase > MAX_ID_BASE) throw new RangeError('id base must be in 1..2^64 - 2^33');
  const random = new SeededRandom(shape.seed);

  const userIds = Array.from({ length: users }, (_, i) => String(shape.idBase + BigInt(i)));
  const channelIds = Array.from({ length: channels }, (_, j) => String(shape.idBase + (1n << 32n) + BigInt(j)));

  const members: number[][] = [];
  let memberships = 0;
  for (let rank = 1; rank <= channels; rank++) {
    const size = Math.max(shape.minChannelSize, Math.min(users, Math.round(shape.maxChannelSize * rank ** -shape.sizeExponent)));
    members.push(sampleDistinct(random, users, size));
    memberships += size;
  }

  const devices = new Uint8Array(users);
  for (let u = 0; u < users; u++) {
    if (!random.chance(shape.onlineFraction)) continue;
    devices[u] = shape.maxDevices >= 2 && random.chance(shape.multiDeviceFraction) ? 2 + random.below(shape.maxDevices - 1) : 1;
  }
  return { shape, userIds, channelIds, members, devices, memberships };
}

/** k distinct integers from [0, n), by Floyd's algorithm: O(k) whatever n is. */
function sampleDistinct(random: SeededRandom, n: number, k: number): number[] {
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = random.below(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen];
}
