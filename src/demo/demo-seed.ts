// Seeds the demo's users, channels and a few messages (development only), through the same
// read-state service the gateway uses, with the admin API's semantics: members join (fully
// read), then messages are posted (the author is acked, the others count them).

import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { PersistentReadStates } from '../store/persistent-read-states.js';
import { DEMO_CHANNELS, DEMO_USERS, SEED_MESSAGES } from './demo-directory.js';

export interface SeedDemoOptions {
  /** Nothing is seeded when nodeEnv is 'production'. */
  config: Pick<Config, 'nodeEnv'>;
  readStates: Pick<PersistentReadStates, 'loadUser' | 'join' | 'createMessage'>;
  log: Logger;
}

/**
 * Seeds the demo once: when none of the demo users is a member of any channel yet (an empty
 * store, or one that holds only other users, such as the load tools'). A restart on seeded
 * data posts nothing, so the badges a demo user left behind stay as they were.
 * Resolves true when it seeded; throws when the store refuses a write.
 */
export async function seedDemo({ config, readStates, log }: SeedDemoOptions): Promise<boolean> {
  if (config.nodeEnv === 'production') return false;
  const existing = await Promise.all(DEMO_USERS.map((user) => readStates.loadUser(user.id)));
  if (existing.some((states) => states.length > 0)) return false;

  for (const channel of DEMO_CHANNELS) {
    for (const userId of channel.member_ids) {
      const joined = await readStates.join(channel.id, userId);
      if (joined.code !== 0) throw new Error(`seeding the demo: adding user ${userId} to channel ${channel.id} failed with code ${joined.code}`);
    }
  }
  for (const message of SEED_MESSAGES) {
    const created = await readStates.createMessage(message.channelId, message.authorId, message.mentionIds, message.mentionEveryone);
    if (created.code !== 0) throw new Error(`seeding the demo: posting in channel ${message.channelId} failed with code ${created.code}`);
  }
  log.info({ users: DEMO_USERS.map((user) => user.name), channels: DEMO_CHANNELS.map((channel) => channel.name) }, 'seeded the demo users and channels');
  return true;
}
