// The demo page (served at / in development): pick a demo user, see that user's channels with
// unread and mention badges, open a channel (which reads it), post a message that mentions
// other members. Every window is one gateway session, so two windows as two users show the
// badges change live, and two as the same user show the user's devices staying in sync.
//
// Plain DOM, no framework: the page is three small lists. The gateway protocol itself is the
// typed client's (src/client/), loaded as the ES modules tsc compiled it to: the window's
// session is a ReconnectingClient, so when the socket drops the page says so, gets its
// session back by RESUME and applies the updates it missed as they are replayed; only when
// the gateway cannot resume (it restarted, or the window was away too long) does a fresh
// READY rebuild the badges.

import { browserSocketFactory } from '../../client/browser-socket.js';
import type { ReadState, Ready } from '../../client/gateway-client.js';
import { NotDeliveredError, type ReconnectingEvent, ReconnectingClient } from '../../client/reconnecting-client.js';
import type { DemoChannel, DemoDirectory } from '../demo-directory.js';
import { DemoReadStates } from './demo-read-states.js';

type DemoUserWithToken = DemoDirectory['users'][number];
/**
 * #status's data-state: `reconnecting` while the session is being got back after its socket
 * dropped; `offline` once an attempt found no gateway (the client keeps trying) or the
 * gateway refused the token.
 */
type ConnectionStatus = 'connecting' | 'online' | 'reconnecting' | 'offline';

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
  offline: 'Offline, retrying…',
};
/** Reconnect back-off: the first step and the ceiling (attempt n waits a random time below min(ceiling, first × 2^n)). */
const BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
/** After the gateway refused the token for good, a new client (with a new token) after this long. */
const RESTART_AFTER_REFUSAL_MS = 5000;
const EVENT_LOG_LENGTH = 12;

type Child = Node | string;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

async function fetchDirectory(): Promise<DemoDirectory> {
  const response = await fetch('/dev/demo-users', { cache: 'no-store' });
  if (!response.ok) throw new Error(`GET /dev/demo-users answered ${response.status}`);
  return (await response.json()) as DemoDirectory;
}

function gatewayUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/gateway`;
}

/** Counts past the exact window are reported as 1000 (docs/protocol.md "The read state"). */
function countText(count: number): string {
  return count >= 1000 ? '999+' : String(count);
}

function plural(count: number, word: string): string {
  return `${countText(count)} ${word}${count === 1 ? '' : 's'}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface ChannelRow {
  item: HTMLLIElement;
  button: HTMLButtonElement;
  unread: HTMLSpanElement;
  mentions: HTMLSpanElement;
}

interface ChannelPanel {
  channelId: string;
  details: Record<'newest' | 'read' | 'unread' | 'mentions', HTMLElement>;
  send: HTMLButtonElement;
  result: HTMLElement;
}

class DemoPage {
  private readonly channels: Map<string, DemoChannel>;
  private readonly names: Map<string, string>;
  private readonly readStates: DemoReadStates;
  private client: ReconnectingClient | null = null;
  /** The last token the directory gave, used again when it cannot be fetched (its TTL is hours). */
  private token: string;

  private readonly status = el('span', { id: 'status', class: 'status', role: 'status' });
  private readonly channelList = el('ul', { class: 'channel-list' });
  private readonly channelPanel = el('section', { class: 'channel-panel', 'aria-live': 'polite' });
  private readonly eventLog = el('ol', { class: 'event-log' });
  private readonly sessionLabel = el('span', { class: 'session-id' });
  private readonly rows = new Map<string, ChannelRow>();
  private panel: ChannelPanel | null = null;

  constructor(
    directory: DemoDirectory,
    private readonly user: DemoUserWithToken,
  ) {
    this.channels = new Map(directory.channels.map((channel) => [channel.id, channel]));
    this.names = new Map(directory.users.map((each) => [each.id, each.name]));
    this.readStates = new DemoReadStates((channelId, messageId) => this.sendAck(channelId, messageId), { visible: document.visibilityState === 'visible' });
    this.token = user.token;
  }

  start(): void {
    document.title = `${this.user.name} · readstate-gateway demo`;
    const identity = document.getElementById('identity')!;
    identity.replaceChildren(
      el('span', {}, 'Signed in as ', el('strong', {}, this.user.name)),
      ' · ',
      el('a', { href: location.href, target: '_blank', rel: 'noopener' }, `another window as ${this.user.name}`),
      ' · ',
      el('a', { href: '/' }, 'switch user'),
      ' · ',
      this.status,
    );
    document.getElementById('app')!.replaceChildren(
      el('div', { class: 'workspace' },
        el('nav', { class: 'channels', 'aria-label': 'Channels' }, el('h2', {}, 'Channels'), this.channelList),
        this.channelPanel,
        el('aside', { class: 'events' }, el('h2', {}, 'This window’s events'), this.sessionLabel, this.eventLog),
      ),
    );
    document.addEventListener('visibilitychange', () => {
      this.readStates.setVisible(document.visibilityState === 'visible');
      this.render();
    });
    this.render();
    this.connect();
  }

  // ---- Connection ------------------------------------------------------------------------

  private connect(): void {
    this.setStatus('connecting');
    const client = new ReconnectingClient({
      url: gatewayUrl(),
      token: () => this.freshToken(),
      socketFactory: browserSocketFactory,
      backoffMs: BACKOFF_MS,
      maxBackoffMs: MAX_BACKOFF_MS,
    });
    this.client = client;
    client.on('dispatch', (event, d) => this.dispatched(event, d));
    client.on('ready', (ready) => this.ready(ready));
    client.on('resumed', ({ replayed }) => {
      this.logLine('RESUMED', `${plural(replayed, 'missed update')} replayed`);
      this.setStatus('online');
      // An ack lost with the old socket is sent again now.
      this.readStates.resumed();
      this.render();
    });
    client.on('reconnecting', (event) => this.reconnecting(event));
    client.on('closed', ({ code, reason }) => {
      if (this.client !== client) return;
      // The gateway refused the token (4004): a new client, with a new token, a little later.
      this.client = null;
      this.logLine('closed', `${code}${reason === '' ? '' : ` ${reason}`}`);
      this.setStatus('offline');
      window.setTimeout(() => this.connect(), RESTART_AFTER_REFUSAL_MS);
    });
  }

  /** A fresh token for every IDENTIFY and RESUME: the old one may have expired while the page was open. */
  private async freshToken(): Promise<string> {
    try {
      const directory = await fetchDirectory();
      const entry = directory.users.find((each) => each.id === this.user.id);
      if (entry !== undefined) this.token = entry.token;
    } catch (error) {
      // The directory is served by the gateway being reconnected to: the last token still does.
      this.logLine('token not refreshed', describeError(error));
    }
    return this.token;
  }

  /** A fresh READY (the first, or after the gateway could not resume): the badges are rebuilt from it. */
  private ready(ready: Ready): void {
    this.sessionLabel.textContent = `session ${ready.session_id}`;
    this.setStatus('online');
    this.logLine('READY', plural(ready.read_states.length, 'channel'));
    this.readStates.reset(ready.read_states);
    this.render();
  }

  private reconnecting({ attempt, delayMs, reason }: ReconnectingEvent): void {
    if (attempt === 1) {
      // The socket that was up dropped: the session is kept on the gateway for a while.
      this.logLine('socket closed', `${reason === 'zombie' ? 'no heartbeat answer' : reason}, reconnecting`);
      this.setStatus('reconnecting');
    } else {
      // The last attempt did not reach the gateway.
      this.logLine('reconnect failed', `attempt ${attempt - 1}, next in ${(delayMs / 1000).toFixed(1)} s`);
      this.setStatus('offline');
    }
  }

  private setStatus(status: ConnectionStatus): void {
    this.status.dataset.state = status;
    this.status.textContent = STATUS_TEXT[status];
    // How the window got its session back, for people and for tests.
    const stats = this.client?.stats;
    if (stats !== undefined) {
      this.status.dataset.resumes = String(stats.resumes);
      this.status.dataset.invalidSessions = String(stats.invalidSessions);
    }
    this.status.title = stats === undefined ? '' : `${plural(stats.resumes, 'resume')}, ${plural(stats.invalidSessions, 'session')} not resumable`;
    document.getElementById('app')!.dataset.connection = status;
    if (this.panel !== null) this.panel.send.disabled = status !== 'online';
  }

  /** Every dispatch, replayed ones included (READY and RESUMED come as their own events). */
  private dispatched(event: string, d: unknown): void {
    switch (event) {
      case 'READ_STATE_UPDATE': {
        const { nonce, ...state } = d as ReadState & { nonce?: string | number };
        // The nonce comes back only to the window that asked; every other window of the
        // user gets the same state pushed.
        const origin = nonce === undefined ? 'pushed' : 'answer to this window';
        this.logLine('READ_STATE_UPDATE', `${this.channelName(state.channel_id)}: ${countText(state.unread_count)} unread, ${plural(state.mention_count, 'mention')} (${origin})`);
        this.readStates.update(state);
        break;
      }
      case 'READ_STATE_DELETE': {
        const { channel_id: channelId } = d as { channel_id: string };
        this.logLine('READ_STATE_DELETE', this.channelName(channelId));
        this.readStates.remove(channelId);
        break;
      }
      default:
        return;
    }
    this.render();
  }

  private sendAck(channelId: string, messageId: string): void {
    const client = this.client;
    // No socket: sent once the session is back (RESUMED, or READY, which reads the open channel again).
    if (client === null || client.state !== 'ready') return this.readStates.ackNotSent(channelId, messageId);
    client.ack(channelId, messageId).catch((error: unknown) => {
      this.logLine('ack failed', describeError(error));
      // An ERROR answer would come again: only an ack the gateway never had is sent again.
      if (!(error instanceof NotDeliveredError)) return;
      this.readStates.ackNotSent(channelId, messageId);
      // Rejected as the session came back: read again now (while still away, `resumed` will).
      if (client.state === 'ready') this.readStates.resumed();
    });
  }

  private async sendMessage(channelId: string, form: HTMLFormElement, panel: ChannelPanel): Promise<void> {
    const client = this.client;
    if (client === null || client.state !== 'ready') return;
    const boxes = Array.from(form.querySelectorAll<HTMLInputElement>('input[name="mention"]:checked'));
    const everyone = form.querySelector<HTMLInputElement>('input[name="everyone"]')!.checked;
    const mentions = boxes.map((box) => box.value);
    panel.send.disabled = true;
    try {
      const state = await client.createMessage({ channel_id: channelId, mentions, mention_everyone: everyone });
      const whom = [...mentions.map((id) => `@${this.names.get(id) ?? id}`), ...(everyone ? ['@everyone'] : [])];
      panel.result.textContent = `Sent message ${state.last_message_id ?? ''}${whom.length > 0 ? `, mentioning ${whom.join(' ')}` : ''}.`;
      form.reset();
    } catch (error) {
      panel.result.textContent = `Not sent: ${describeError(error)}`;
    } finally {
      panel.send.disabled = this.client?.state !== 'ready';
    }
  }

  // ---- Rendering -------------------------------------------------------------------------

  private channelName(channelId: string): string {
    return `#${this.channels.get(channelId)?.name ?? channelId}`;
  }

  private render(): void {
    this.renderChannelList();
    this.renderChannelPanel();
  }

  /** Rows are kept and updated in place, so a click never lands on a row being replaced. */
  private renderChannelList(): void {
    const states = this.readStates.all().sort((a, b) => this.channelName(a.channel_id).localeCompare(this.channelName(b.channel_id)));
    const present = new Set(states.map((state) => state.channel_id));
    for (const [channelId, row] of this.rows) {
      if (present.has(channelId)) continue;
      row.item.remove();
      this.rows.delete(channelId);
    }
    states.forEach((state, index) => {
      const row = this.rows.get(state.channel_id) ?? this.createRow(state.channel_id);
      if (this.channelList.children[index] !== row.item) this.channelList.insertBefore(row.item, this.channelList.children[index] ?? null);
      const open = state.channel_id === this.readStates.openChannelId;
      row.item.classList.toggle('unread', state.unread_count > 0);
      row.item.classList.toggle('open', open);
      if (open) row.button.setAttribute('aria-current', 'page');
      else row.button.removeAttribute('aria-current');
      row.unread.hidden = state.unread_count === 0;
      row.unread.textContent = countText(state.unread_count);
      row.unread.title = plural(state.unread_count, 'unread message');
      row.mentions.hidden = state.mention_count === 0;
      row.mentions.textContent = countText(state.mention_count);
      row.mentions.title = plural(state.mention_count, 'mention');
    });
    if (states.length === 0) this.channelList.replaceChildren(el('li', { class: 'empty' }, 'No channels yet.'));
    else this.channelList.querySelector(':scope > li.empty')?.remove();
  }

  private createRow(channelId: string): ChannelRow {
    const unread = el('span', { class: 'badge badge-unread' });
    const mentions = el('span', { class: 'badge badge-mentions' });
    const button = el('button', { type: 'button', class: 'channel-button' }, el('span', { class: 'channel-name' }, this.channelName(channelId)), unread, mentions);
    button.addEventListener('click', () => {
      this.readStates.openChannel(channelId);
      this.render();
    });
    const row = { item: el('li', { 'data-channel-id': channelId }, button), button, unread, mentions };
    this.rows.set(channelId, row);
    return row;
  }

  private renderChannelPanel(): void {
    const channelId = this.readStates.openChannelId;
    if (channelId === null) {
      if (this.panel !== null || this.channelPanel.childElementCount === 0) {
        this.panel = null;
        this.channelPanel.replaceChildren(
          el('h2', {}, 'No channel open'),
          el('p', { class: 'hint' }, 'Open a channel on the left: opening it marks it read on every window of this user.'),
        );
      }
      return;
    }
    if (this.panel?.channelId !== channelId) this.panel = this.buildPanel(channelId);
    const state = this.readStates.get(channelId);
    if (state === undefined) return;
    const { details } = this.panel;
    details.newest.textContent = state.last_message_id ?? 'none yet';
    details.read.textContent = state.last_acked_id ?? 'nothing yet';
    details.unread.textContent = countText(state.unread_count);
    details.mentions.textContent = countText(state.mention_count);
  }

  /** The open channel's panel, built when the channel is opened (so a half-filled form survives updates). */
  private buildPanel(channelId: string): ChannelPanel {
    const channel = this.channels.get(channelId);
    const others = (channel?.member_ids ?? []).filter((id) => id !== this.user.id);
    const detail = (): HTMLElement => el('dd', {});
    const details = { newest: detail(), read: detail(), unread: detail(), mentions: detail() };
    const send = el('button', { type: 'submit', class: 'send' }, 'Send message');
    send.disabled = this.client?.state !== 'ready';
    const result = el('p', { class: 'send-result', role: 'status' });
    const mentionChoices = others.map((id) =>
      el('label', {}, el('input', { type: 'checkbox', name: 'mention', value: id }), ` @${this.names.get(id) ?? id}`),
    );
    const form = el('form', { class: 'composer' },
      el('fieldset', {}, el('legend', {}, 'Mention'), ...mentionChoices, el('label', {}, el('input', { type: 'checkbox', name: 'everyone' }), ' @everyone')),
      send,
      result,
    );
    const panel: ChannelPanel = { channelId, details, send, result };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.sendMessage(channelId, form, panel);
    });
    const memberNames = (channel?.member_ids ?? []).map((id) => this.names.get(id) ?? id);
    this.channelPanel.replaceChildren(
      el('h2', {}, this.channelName(channelId)),
      el('p', { class: 'members' }, memberNames.length > 0 ? `Members: ${memberNames.join(', ')}` : 'Not a demo channel: its members are unknown here.'),
      el('dl', { class: 'read-state' },
        el('dt', {}, 'Newest message'), details.newest,
        el('dt', {}, 'Read up to'), details.read,
        el('dt', {}, 'Unread'), details.unread,
        el('dt', {}, 'Mentions'), details.mentions,
      ),
      el('h3', {}, 'Post a message'),
      el('p', { class: 'hint' }, 'Messages here carry no text: the gateway tracks only that they exist and whom they mention.'),
      form,
    );
    return panel;
  }

  private logLine(what: string, detail: string): void {
    const time = new Date().toLocaleTimeString([], { hour12: false });
    this.eventLog.prepend(el('li', {}, el('time', {}, time), ' ', el('code', {}, what), ' ', detail));
    while (this.eventLog.childElementCount > EVENT_LOG_LENGTH) this.eventLog.lastElementChild!.remove();
  }
}

function renderPicker(directory: DemoDirectory, unknownUserId: string | null): void {
  document.getElementById('identity')!.replaceChildren('Pick a demo user');
  const cards = directory.users.map((user) => {
    const channelNames = directory.channels.filter((channel) => channel.member_ids.includes(user.id)).map((channel) => `#${channel.name}`);
    return el('li', {}, el('a', { href: `?user=${user.id}`, class: 'user-card' }, el('strong', {}, user.name), el('span', {}, channelNames.join(' '))));
  });
  document.getElementById('app')!.replaceChildren(
    el('section', { class: 'picker' },
      el('h2', {}, 'Who are you?'),
      ...(unknownUserId === null ? [] : [el('p', { class: 'error' }, `There is no demo user ${unknownUserId}.`)]),
      el('p', { class: 'hint' }, 'Open two windows as two users to watch the badges change live; open a second window as the same user to watch two devices stay in sync.'),
      el('ul', { class: 'user-cards' }, ...cards),
    ),
  );
}

async function main(): Promise<void> {
  const directory = await fetchDirectory();
  const userId = new URLSearchParams(location.search).get('user');
  const user = directory.users.find((each) => each.id === userId);
  if (user === undefined) renderPicker(directory, userId);
  else new DemoPage(directory, user).start();
}

main().catch((error: unknown) => {
  document.getElementById('app')!.replaceChildren(
    el('p', { class: 'error' }, `The demo could not start: ${describeError(error)}. It needs the gateway in development mode (NODE_ENV other than production).`),
  );
});
