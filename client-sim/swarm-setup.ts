// Puts a planned swarm (or any membership plan) in place on a running gateway: memberships through the HTTP admin
// API (PUT /v1/channels/:c/members/:u), and user tokens signed with the gateway's JWT
// secret. Shared by the swarm CLI and the k6 runner.

import { UserTokens } from '../src/gateway/user-tokens.js';
import type { SwarmPlan } from './swarm-plan.js';

/** Where the gateway is and how to talk to its admin side. */
export interface GatewayTarget {
  /** ws://host:port/gateway */
  gatewayUrl: string;
  adminToken: string;
  jwtSecret: string;
}

/** Who is a member of what: members[c] holds indices into userIds. */
export type MembershipPlan = Pick<SwarmPlan, 'userIds' | 'channelIds' | 'members'>;

const REQUEST_TIMEOUT_MS = 15_000;

/** http://host:port of the gateway's HTTP API, from its WebSocket URL. */
export function httpBaseOf(gatewayUrl: string): string {
  const url = new URL(gatewayUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url.origin;
}

/**
 * Adds every planned membership, `concurrency` requests at a time. Each is a PUT the gateway
 * writes through to Cassandra before answering 204, so this is the slow part of a set-up.
 * Throws on the first non-204 answer.
 */
export async function putMemberships(target: GatewayTarget, plan: MembershipPlan, concurrency: number, onProgress?: (done: number, total: number) => void): Promise<void> {
  const base = httpBaseOf(target.gatewayUrl);
  const pairs: [string, string][] = [];
  plan.members.forEach((users, c) => {
    for (const u of users) pairs.push([plan.channelIds[c], plan.userIds[u]]);
  });
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < pairs.length) {
      const [channelId, userId] = pairs[next++];
      const response = await fetch(`${base}/v1/channels/${channelId}/members/${userId}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${target.adminToken}` },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (response.status !== 204) {
        throw new Error(`PUT member ${userId} of ${channelId}: ${response.status} ${await response.text()}`);
      }
      await response.arrayBuffer();
      onProgress?.(++done, pairs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, pairs.length)) }, worker));
}

/** One token per user id, valid for `ttlSeconds`. */
export async function signTokens(jwtSecret: string, userIds: readonly string[], ttlSeconds: number): Promise<string[]> {
  const tokens = new UserTokens(jwtSecret);
  return Promise.all(userIds.map((id) => tokens.sign(id, ttlSeconds)));
}

/** Waits until GET /readyz answers 200 (the store is reachable), at most `timeoutMs`. */
export async function waitUntilReady(gatewayUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const url = `${httpBaseOf(gatewayUrl)}/readyz`;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`gateway at ${url} not ready after ${timeoutMs} ms (${last})`);
}
