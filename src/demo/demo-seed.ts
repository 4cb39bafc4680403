// Seeds the demo's users, channels and a few messages (development only), through the admin
// API's operations (on a cluster node, each runs on its user's node): members join (fully
// read), then messages are posted (the author is acked, the others count them).

import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AdminOperations } from '../gateway/admin-operations.js';
import { DEMO_CHANNELS, DEMO_USERS, SEED_MESSAGES } from './demo-directory.js';

export interface SeedDemoOptions {
  /** Nothing is seeded when nodeEnv is 'production'. */
  config: Pick<Config, 'nodeEnv'>;
  operations: AdminOperations;
  log: Logger;
}

/**
 * Seeds the demo once: when none of the demo users is a member of any channel yet (an empty
 * store, or one that holds only other users, such as the load tools'). A restart on seeded
 * data posts nothing, so the badges a demo user left behind stay as they were.
 * Resolves true when it seeded; throws when the store refuses a write.
 */
export async function seedDemo({ config, operations, log }: SeedDemoOptions): Promise<boolean> {
  if (config.nodeEnv === 'production') return false;
  const existing = await Promise.all(DEMO_USERS.map((user) => operations.readStates(user.id)));
  if (existing.some((answer) => answer.status !== 200 || (answer.body as unknown[]).length > 0)) return false;

  for (const channel of DEMO_CHANNELS) {
    for (const userId of channel.member_ids) {
      const joined = await operations.join(channel.id, userId);
      if (joined.status !== 204) throw new Error(`seeding the demo: adding user ${userId} to channel ${channel.id} failed: ${joined.status} ${JSON.stringify(joined.body)}`);
    }
  }
  for (const message of SEED_MESSAGES) {
    const created = await operations.postMessage(message.channelId, { authorId: message.authorId, mentions: message.mentionIds, mentionEveryone: message.mentionEveryone });
    if (created.status !== 200) throw new Error(`seeding the demo: posting in channel ${message.channelId} failed: ${created.status} ${JSON.stringify(created.body)}`);
  }
  log.info({ users: DEMO_USERS.map((user) => user.name), channels: DEMO_CHANNELS.map((channel) => channel.name) }, 'seeded the demo users and channels');
  return true;
}
