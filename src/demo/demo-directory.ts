// The demo's fixed cast: users, channels and who is in which, plus the messages that seed
// them. The gateway knows users and channels only as ids; names and member lists are the
// demo's own, handed to the page by /dev/demo-users (the protocol has no member listing).
//
// Ids are fixed so that a restart, a second window and the browser test all mean the same
// people. They are above 2^53, like every real snowflake, so a page that parsed them as
// numbers would show the wrong user at once.

export interface DemoUser {
  id: string;
  name: string;
}

export interface DemoChannel {
  id: string;
  name: string;
  member_ids: string[];
}

/** The body of GET /dev/demo-users. */
export interface DemoDirectory {
  users: Array<DemoUser & { token: string }>;
  channels: DemoChannel[];
}

export interface SeedMessage {
  channelId: string;
  authorId: string;
  mentionIds: string[];
  mentionEveryone: boolean;
}

const ALICE = '1187436250460160001';
const BOB = '1187436250460160002';
const CAROL = '1187436250460160003';
const DAVE = '1187436250460160004';

const GENERAL = '1187436250460170001';
const RANDOM = '1187436250460170002';
const BACKEND = '1187436250460170003';
const DESIGN = '1187436250460170004';

export const DEMO_USERS: readonly DemoUser[] = [
  { id: ALICE, name: 'Alice' },
  { id: BOB, name: 'Bob' },
  { id: CAROL, name: 'Carol' },
  { id: DAVE, name: 'Dave' },
];

export const DEMO_CHANNELS: readonly DemoChannel[] = [
  { id: GENERAL, name: 'general', member_ids: [ALICE, BOB, CAROL, DAVE] },
  { id: RANDOM, name: 'random', member_ids: [ALICE, BOB, CAROL] },
  { id: BACKEND, name: 'backend', member_ids: [BOB, CAROL, DAVE] },
  { id: DESIGN, name: 'design', member_ids: [ALICE, DAVE] },
];

/**
 * Posted in this order after every member has joined, so that each user starts with a mix
 * of plain unread channels, channels with mentions, an @everyone, and fully read ones
 * (an author's own channel is read up to the author's message).
 */
export const SEED_MESSAGES: readonly SeedMessage[] = [
  { channelId: GENERAL, authorId: CAROL, mentionIds: [ALICE], mentionEveryone: false },
  { channelId: GENERAL, authorId: DAVE, mentionIds: [], mentionEveryone: false },
  { channelId: GENERAL, authorId: CAROL, mentionIds: [BOB], mentionEveryone: false },
  { channelId: RANDOM, authorId: ALICE, mentionIds: [BOB], mentionEveryone: false },
  { channelId: RANDOM, authorId: BOB, mentionIds: [], mentionEveryone: false },
  { channelId: BACKEND, authorId: DAVE, mentionIds: [CAROL], mentionEveryone: false },
  { channelId: BACKEND, authorId: DAVE, mentionIds: [], mentionEveryone: true },
  { channelId: DESIGN, authorId: DAVE, mentionIds: [ALICE], mentionEveryone: false },
];
