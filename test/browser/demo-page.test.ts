import { createServer, type Socket } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadState } from '../../src/client/gateway-client.js';
import { connectNode } from '../../src/client/node-socket.js';
import { DEMO_CHANNELS, DEMO_USERS, type DemoDirectory } from '../../src/demo/demo-directory.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { AdminApi, byChannel, ensureBuilt, type GatewayProcess, startGateway } from '../support/gateway-harness.js';
import { ensureCassandra, ensureChromium, launchChromium, screenshot } from './chromium.js';
import { TcpRelay } from '../support/tcp-relay.js';

// The demo page in a real browser (Debian chromium driven by playwright-core) against the
// compiled gateway in development mode, on a keyspace of its own that the gateway seeds.

const ALICE = DEMO_USERS.find((user) => user.name === 'Alice')!.id;
const BOB = DEMO_USERS.find((user) => user.name === 'Bob')!.id;
const CAROL = DEMO_USERS.find((user) => user.name === 'Carol')!.id;
const GENERAL = DEMO_CHANNELS.find((channel) => channel.name === 'general')!.id;
const BACKEND = DEMO_CHANNELS.find((channel) => channel.name === 'backend')!.id;
const RANDOM = DEMO_CHANNELS.find((channel) => channel.name === 'random')!.id;
const VIEWPORT = { width: 1200, height: 560 };
/** Live updates arrive in milliseconds; the margin is for a loaded machine. */
const POLL = { timeout: 10_000 };

const keyspace = uniqueKeyspace('demo_page');
const gatewayEnv = { NODE_ENV: 'development', CASSANDRA_KEYSPACE: keyspace };
let gateway: GatewayProcess | undefined;
let browser: Browser | undefined;
/** Uncaught exceptions and console errors of every window, checked by the tests that open one. */
const uncaughtErrors: string[] = [];
const consoleErrors: string[] = [];

function running(): GatewayProcess {
  if (gateway === undefined) throw new Error('the gateway is not running');
  return gateway;
}

/** A window of its own (a browser context: no shared storage) whose errors are recorded. */
async function newWindow(label: string): Promise<Page> {
  const context = await browser!.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.on('pageerror', (error) => uncaughtErrors.push(`${label}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${label}: ${message.text()}`);
  });
  return page;
}

/** A window signed in as the user, online (served by `baseUrl`, the gateway's by default). */
async function openAs(userId: string, baseUrl = running().httpUrl): Promise<Page> {
  const page = await newWindow(userId);
  await page.goto(`${baseUrl}/?user=${userId}`);
  await page.locator('#status[data-state="online"]').waitFor({ timeout: 15_000 });
  await page.locator('li[data-channel-id]').first().waitFor();
  return page;
}

/** The badges a channel's row shows: a hidden badge counts as 0. */
async function badges(page: Page, channelId: string): Promise<{ unread: number; mentions: number }> {
  const row = page.locator(`li[data-channel-id="${channelId}"]`);
  const count = async (selector: string) => {
    const badge = row.locator(selector);
    return (await badge.isVisible()) ? Number(await badge.textContent()) : 0;
  };
  return { unread: await count('.badge-unread'), mentions: await count('.badge-mentions') };
}

async function openChannel(page: Page, channelId: string): Promise<void> {
  await page.locator(`li[data-channel-id="${channelId}"] button`).click();
}

/** A TCP server that accepts connections and never answers: a network that has gone away. */
async function startBlackHole(): Promise<{ port: number; accepted(): number; release(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    release,
    close: () => {
      release();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Marks the window, so a later check can tell it was not reloaded, and records every #status state it shows from now on. */
async function watchWindow(page: Page): Promise<void> {
  await page.evaluate(() => {
    const status = document.getElementById('status')!;
    const states = [status.dataset.state];
    Object.assign(window, { notReloaded: true, statusStates: states });
    new MutationObserver(() => states.push(status.dataset.state)).observe(status, { attributes: true, attributeFilter: ['data-state'] });
  });
}

async function watched(page: Page): Promise<{ notReloaded: boolean; statusStates: string[] }> {
  return page.evaluate(() => {
    const w = window as unknown as { notReloaded?: boolean; statusStates?: string[] };
    return { notReloaded: w.notReloaded === true, statusStates: w.statusStates ?? [] };
  });
}

/** How the window's client got its session back so far (the page's #status data attributes). */
async function sessionHistory(page: Page): Promise<{ resumes: number; invalidSessions: number }> {
  const status = page.locator('#status');
  return { resumes: Number(await status.getAttribute('data-resumes')), invalidSessions: Number(await status.getAttribute('data-invalid-sessions')) };
}

beforeAll(async () => {
  await Promise.all([ensureChromium(), ensureCassandra(), ensureBuilt()]);
  [gateway, browser] = await Promise.all([startGateway(gatewayEnv), launchChromium()]);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

describe('the demo page (development mode)', () => {
  it('gets the demo users from /dev/demo-users, with tokens the gateway accepts, each seeded with its channels', async () => {
    const response = await fetch(`${running().httpUrl}/dev/demo-users`);
    expect(response.status).toBe(200);
    const directory = (await response.json()) as DemoDirectory;
    expect(directory.users.map(({ id, name }) => ({ id, name }))).toEqual(DEMO_USERS);
    expect(directory.channels).toEqual(DEMO_CHANNELS);
    for (const user of directory.users) {
      const client = await connectNode(running().wsUrl);
      try {
        const ready = await client.identify(user.token);
        expect(ready.user.id).toBe(user.id);
        const memberOf = DEMO_CHANNELS.filter((channel) => channel.member_ids.includes(user.id)).map((channel) => channel.id);
        expect(ready.read_states.map((state) => state.channel_id).sort()).toEqual(memberOf.sort());
      } finally {
        await client.close();
      }
    }
  });

  it("shows a mention live on both of the mentioned user's windows, and clears it on both when one opens the channel", async () => {
    const [alice, bob, bobElsewhere] = await Promise.all([openAs(ALICE), openAs(BOB), openAs(BOB)]);
    // Bob is reading #backend (seeded unread) in one window; the other window follows.
    await openChannel(bob, BACKEND);
    await expect.poll(() => badges(bobElsewhere, BACKEND), POLL).toEqual({ unread: 0, mentions: 0 });
    const before = await badges(bob, GENERAL);
    expect(await badges(bobElsewhere, GENERAL)).toEqual(before);

    // Alice opens #general (reading it), mentions Bob and sends.
    await openChannel(alice, GENERAL);
    await expect.poll(() => badges(alice, GENERAL), POLL).toEqual({ unread: 0, mentions: 0 });
    await alice.getByLabel('@Bob').check();
    await alice.getByRole('button', { name: 'Send message' }).click();
    await expect.poll(() => alice.locator('.send-result').textContent(), POLL).toMatch(/^Sent message \d+, mentioning @Bob\.$/);

    // Both of Bob's windows count it, without a reload.
    const mentioned = { unread: before.unread + 1, mentions: before.mentions + 1 };
    await expect.poll(() => badges(bob, GENERAL), POLL).toEqual(mentioned);
    await expect.poll(() => badges(bobElsewhere, GENERAL), POLL).toEqual(mentioned);
    // The author's own message leaves her channel read.
    expect(await badges(alice, GENERAL)).toEqual({ unread: 0, mentions: 0 });
    await screenshot(bob, 'bob-mentioned');
    await screenshot(alice, 'alice-sent-mention');

    // Bob opens #general in one window: both windows show it read.
    await openChannel(bob, GENERAL);
    await expect.poll(() => badges(bob, GENERAL), POLL).toEqual({ unread: 0, mentions: 0 });
    await expect.poll(() => badges(bobElsewhere, GENERAL), POLL).toEqual({ unread: 0, mentions: 0 });
    // The other window was told, not made to open the channel.
    await expect(bobElsewhere.locator(`li[data-channel-id="${GENERAL}"] button`).getAttribute('aria-current')).resolves.toBeNull();
    await screenshot(bob, 'bob-read-general');
    await screenshot(bobElsewhere, 'bob-second-window-in-sync');

    expect([...uncaughtErrors, ...consoleErrors]).toEqual([]);
    await Promise.all([alice, bob, bobElsewhere].map((page) => page.context().close()));
  });

  it('lists the demo users on the bare page, and the badges survive a reload', async () => {
    const page = await newWindow('user picker');
    await page.goto(`${running().httpUrl}/`);
    const cards = page.locator('a.user-card strong');
    await cards.first().waitFor();
    expect(await cards.allTextContents()).toEqual(DEMO_USERS.map((user) => user.name));
    await screenshot(page, 'user-picker');
    await page.getByRole('link', { name: /^Bob/ }).click();
    await page.locator('#status[data-state="online"]').waitFor({ timeout: 15_000 });
    // Read in the previous test, and read it stays: the state is the gateway's, not the page's.
    await page.locator(`li[data-channel-id="${GENERAL}"]`).waitFor();
    expect(await badges(page, GENERAL)).toEqual({ unread: 0, mentions: 0 });
    expect([...uncaughtErrors, ...consoleErrors]).toEqual([]);
    await page.context().close();
  });

  it('shows a cut connection as reconnecting and comes back resumed, not reloaded, counting what was posted meanwhile', async () => {
    const api = new AdminApi(running().httpUrl);
    const relay = await TcpRelay.start(running().port);
    const blackHole = await startBlackHole();
    try {
      const bob = await openAs(BOB, `http://127.0.0.1:${relay.port}`);
      await watchWindow(bob);
      // Bob is reading #backend: what comes in there while he is away is read once he is back.
      await openChannel(bob, BACKEND);
      await expect.poll(() => badges(bob, BACKEND), POLL).toEqual({ unread: 0, mentions: 0 });
      const sessionLabel = await bob.locator('.session-id').textContent();
      const before = { random: await badges(bob, RANDOM), general: await badges(bob, GENERAL) };
      expect(await sessionHistory(bob)).toEqual({ resumes: 0, invalidSessions: 0 });

      // Alice posts; halfway through, the network under Bob's window goes: the open socket is
      // reset and new connections hang (the relay now leads to a black hole).
      const posts: Array<[string, { mentions?: string[] }]> = [
        [RANDOM, { mentions: [BOB] }],
        [GENERAL, {}],
        [RANDOM, {}],
        [RANDOM, { mentions: [BOB] }],
        [GENERAL, { mentions: [BOB] }],
        [RANDOM, {}],
      ];
      for (const [i, [channelId, extra]] of posts.entries()) {
        if (i === 2) {
          relay.retarget(blackHole.port);
          relay.cut();
          await bob.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
        }
        await api.post(channelId, ALICE, extra);
      }
      await api.post(BACKEND, CAROL, { mentions: [BOB] });
      // The window's first attempt to reconnect hangs in the black hole: still away, and saying so.
      await expect.poll(() => blackHole.accepted(), POLL).toBeGreaterThan(0);
      expect(await bob.locator('#status').getAttribute('data-state')).toBe('reconnecting');
      expect(await bob.locator('#status').textContent()).toBe('Reconnecting…');
      await screenshot(bob, 'bob-reconnecting');

      // The network comes back: the hanging attempt fails (the page says offline), the next one reaches the gateway.
      relay.retarget(running().port);
      blackHole.release();
      await bob.locator('#status[data-state="online"]').waitFor({ timeout: 15_000 });
      const counted = (channelId: string, base: { unread: number; mentions: number }) => ({
        unread: base.unread + posts.filter(([c]) => c === channelId).length,
        mentions: base.mentions + posts.filter(([c, extra]) => c === channelId && extra.mentions !== undefined).length,
      });
      const expected = { random: counted(RANDOM, before.random), general: counted(GENERAL, before.general) };
      await expect.poll(async () => ({ random: await badges(bob, RANDOM), general: await badges(bob, GENERAL) }), POLL).toEqual(expected);
      // The gateway's own counts agree.
      const states = (await api.readStates(BOB)) as ReadState[];
      const stateOf = (channelId: string) => states.find((state) => state.channel_id === channelId)!;
      expect({ unread: stateOf(RANDOM).unread_count, mentions: stateOf(RANDOM).mention_count }).toEqual(expected.random);
      expect({ unread: stateOf(GENERAL).unread_count, mentions: stateOf(GENERAL).mention_count }).toEqual(expected.general);
      // The open channel's new message was read after the resume: on the page and on the gateway.
      expect(await badges(bob, BACKEND)).toEqual({ unread: 0, mentions: 0 });
      await expect.poll(async () => ((await api.readStates(BOB)) as ReadState[]).find((state) => state.channel_id === BACKEND)!.unread_count, POLL).toBe(0);

      // Resumed (the same session, the missed updates replayed), not identified again, not reloaded.
      expect(await sessionHistory(bob)).toEqual({ resumes: 1, invalidSessions: 0 });
      expect(await bob.locator('.session-id').textContent()).toBe(sessionLabel);
      const { notReloaded, statusStates } = await watched(bob);
      expect(notReloaded).toBe(true);
      expect(statusStates[0]).toBe('online');
      expect(statusStates.at(-1)).toBe('online');
      expect(statusStates).toContain('reconnecting');
      expect(await bob.locator('.event-log').textContent()).toMatch(/RESUMED \d+ missed updates? replayed/);
      await screenshot(bob, 'bob-resumed');
      // The browser reports the failed connection attempts as console errors; the page throws nothing.
      expect(uncaughtErrors).toEqual([]);
      await bob.context().close();
    } finally {
      await relay.close();
      await blackHole.close();
    }
  });

  it('does not seed again when the gateway restarts on seeded data, and an open window reconnects to it', async () => {
    // Every demo user's read states, through the admin API of whichever process is running.
    const snapshot = () => {
      const admin = new AdminApi(running().httpUrl);
      return Promise.all(DEMO_USERS.map(async (user) => byChannel((await admin.readStates(user.id)) as Array<{ channel_id: string }>)));
    };
    const before = await snapshot();
    // The window reaches the gateway through a relay whose address outlives the process.
    const relay = await TcpRelay.start(running().port);
    try {
      const bob = await openAs(BOB, `http://127.0.0.1:${relay.port}`);
      await watchWindow(bob);
      const randomBefore = await badges(bob, RANDOM);

      expect(await running().stop()).toBe(0);
      gateway = undefined;
      await bob.locator('#status[data-state="offline"]').waitFor({ timeout: 10_000 });
      gateway = await startGateway(gatewayEnv);
      relay.retarget(running().port);
      expect(await snapshot()).toEqual(before);

      // Whether the window is back before or after this post, it must end up counting it:
      // from READY on the new connection, or pushed over it.
      await new AdminApi(running().httpUrl).post(RANDOM, ALICE, { mentions: [BOB] });
      await bob.locator('#status[data-state="online"]').waitFor({ timeout: 30_000 });
      await expect.poll(() => badges(bob, RANDOM), POLL).toEqual({ unread: randomBefore.unread + 1, mentions: randomBefore.mentions + 1 });
      // The stopping gateway sent RECONNECT; the new process cannot resume a session it never
      // had, so the window identified again and rebuilt its badges from READY, without a reload.
      expect(await sessionHistory(bob)).toEqual({ resumes: 0, invalidSessions: 1 });
      expect((await watched(bob)).notReloaded).toBe(true);
      // The browser reports the refused connections of the outage as console errors; the page throws nothing.
      expect(uncaughtErrors).toEqual([]);
      await bob.context().close();
    } finally {
      await relay.close();
    }
  });
});
