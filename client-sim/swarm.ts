// The running swarm: every online device holds a session on the reconnecting client, which
// resumes by itself when its socket drops (and the swarm can drop sockets on purpose, at a
// given rate, to measure what resuming costs); messages are
// posted as a Poisson process over channels weighted by size; members who receive one read
// it (ack) after a random delay. Latency is measured end to end in this one process, with
// performance.now() on both sides:
// - message: MESSAGE_CREATE sent -> each online member session's READ_STATE_UPDATE for that
//   message received (the author's sessions included: their state changed too);
// - ack: MESSAGE_ACK sent -> each of the user's sessions' update showing the new ack.
//
// Updates are matched to messages by message id. The author learns the id only from its
// own answer, which may be read after another session's copy of the same update, so copies
// that arrive first wait in `early` with their receive time until the id is known.
//
// Across drops: a session's missed updates come back through RESUME on its next socket and
// are timed from the send like any other (so a replayed update's latency includes the time
// the session was away; `latency.replayed` shows them apart). Each dispatch's sequence
// number is checked, so one delivered twice is counted as a duplicate and never credited
// again, and a message is credited to a session at most once. A session that cannot resume
// (INVALID_SESSION, then a fresh READY) never gets the updates it missed: they count as lost.

import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import { type ClientSocket, type Encoding, GatewayClosedError, GatewayError, type MessageCreate, type ReadState, type Ready } from '../src/client/gateway-client.js';
import { nodeSocketFactory } from '../src/client/node-socket.js';
import { NotDeliveredError, ReconnectingClient, type ReconnectingClientStats } from '../src/client/reconnecting-client.js';
import { compareIds, DropSchedule, SessionDelivery } from './delivery.js';
import { type LatencySummary, newHistogram, recordMs, type SecondSample, summarize } from './latency.js';
import { SeededRandom } from './random.js';
import type { SwarmPlan } from './swarm-plan.js';

export interface LoadShape {
  /** Mean messages per second over the whole swarm (Poisson arrivals). */
  messagesPerSecond: number;
  /** A channel's share of messages grows as size^activityExponent (0: all equal, 1: per member). */
  activityExponent: number;
  /** Probability that a message mentions one random member of its channel. */
  mentionProbability: number;
  /** Probability that a message has mention_everyone. */
  everyoneProbability: number;
  /** Probability that a member who receives a message reads (acks) the channel. */
  readProbability: number;
  /** Mean delay before such a read, exponentially distributed. */
  readDelayMs: number;
  /** Load before measuring starts (JIT warm-up); not recorded. */
  warmupSeconds: number;
  /** Measured load. */
  seconds: number;
  /** After the load stops, how long late updates are still awaited. */
  drainMs: number;
  /** Hard cap on messages sent (a bound on the loop whatever the rate). */
  maxMessages: number;
  seed: number;
}

export interface SwarmReport {
  /** Probability per second that the swarm drops a connected socket (0: a control run without drops). */
  dropRate: number;
  /** Sockets the swarm dropped on purpose (terminated without a closing handshake). */
  drops: number;
  /** What the sessions' clients went through, summed (whole phase: warm-up, load and drain). */
  reconnects: number;
  resumes: number;
  invalidSessions: number;
  /** Dispatches received again through RESUME. */
  replayed: number;
  zombies: number;
  reconnectRequests: number;
  /** Member sessions that never got a measured message's update (the same count as missedUpdates). */
  lost: number;
  /** Dispatches a session received twice, and updates showing an older message than one it had already seen. */
  duplicates: number;
  /** Sequence numbers a session skipped (dispatches it never received, a fresh READY aside). */
  sequenceGaps: number;
  sessions: number;
  messagesSent: number;
  acksSent: number;
  /** Dispatches received during the measured seconds. */
  eventsReceived: number;
  /** Online member sessions that never got a measured message's update (within 10 s or the drain). */
  missedUpdates: number;
  /** Acks whose update did not reach one of the user's sessions in time. */
  missedAcks: number;
  errors: Record<string, number>;
  /** Sockets that dropped during the run without the swarm dropping them, by close code (a client that gave up: `final:<code>`). */
  closes: Record<string, number>;
  /** Measured latencies; `replayed`: the message updates among them that came through RESUME. */
  latency: { message: LatencySummary; ack: LatencySummary; all: LatencySummary; replayed: LatencySummary };
  /**
   * Redirects to the node serving the user (close 4010), and, on a cluster, the message
   * updates whose member is on another node than the author: their share of all measured
   * message updates and their latencies beside the same-node ones.
   */
  redirects: number;
  crossNode: { share: number; latency: LatencySummary; sameNodeLatency: LatencySummary };
  perSecond: SecondSample[];
  /** Wall-clock time (epoch ms) when the measured seconds began: second t covers [at + (t-1) s, at + t s). */
  measureStartedAt: number;
  /** This process's own event-loop delay: large values mean the simulator, not the gateway, was slow. */
  simulatorLoopDelay: { p99us: number; maxUs: number };
}

export interface SimSession {
  client: ReconnectingClient;
  user: number;
  /** The socket the client is on now (recorded by its socket factory): the one a drop terminates. */
  socket: ClientSocket | null;
  /** A drop of the swarm's is under way: the socket loss that follows is not counted in `closes`. */
  dropping: boolean;
  /** The socket dropped and RESUMED (or a fresh READY) has not come yet: what arrives meanwhile is the replay. */
  away: boolean;
  /** Sequence numbers and the newest message seen per channel (index). */
  delivery: SessionDelivery;
  /** The ack this session is waiting to see, per channel (index). */
  pendingAcks: Map<number, { ackId: string; sentAt: number }>;
}

export interface SwarmOptions {
  /** Probability per second that a connected socket is dropped during the load (default 0). */
  dropRate?: number;
  onSecond?: (sample: SecondSample, connectedSessions: number, warmingUp: boolean, drops: number) => void;
}

interface InFlightMessage {
  sentAt: number;
  /** The node the author's session was on when it sent the message. */
  authorNode: string;
  /** Sessions still to receive it. */
  remaining: number;
  /** Sent after the warm-up: its latencies count. */
  measured: boolean;
}

/** Updates not seen within this long are counted as missed. */
const UPDATE_DEADLINE_MS = 10_000;
const READY_TIMEOUT_MS = 30_000;

/**
 * Opens every planned device session on a ReconnectingClient, `concurrency` at a time, and
 * waits for each READY. Each client's socket factory records the socket it is on, for drops.
 */
export async function connectSwarm(
  gatewayUrls: readonly string[],
  encoding: Encoding,
  plan: SwarmPlan,
  tokens: readonly string[],
  concurrency: number,
  onProgress?: (done: number, total: number) => void,
): Promise<SimSession[]> {
  const wanted: number[] = [];
  plan.devices.forEach((count, user) => {
    for (let d = 0; d < count; d++) wanted.push(user);
  });
  const sessions: SimSession[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < wanted.length) {
      const index = next++;
      const user = wanted[index];
      // On a cluster, sessions start spread over the nodes; each is redirected to its user's node.
      const url = gatewayUrls[index % gatewayUrls.length];
      const session = { user, socket: null, dropping: false, away: false, delivery: new SessionDelivery(), pendingAcks: new Map() } as unknown as SimSession;
      session.client = new ReconnectingClient({
        url,
        fallbackUrls: gatewayUrls.filter((other) => other !== url),
        token: tokens[user],
        encoding,
        socketFactory: (target, handlers) => (session.socket = nodeSocketFactory(target, handlers)),
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no READY for user ${plan.userIds[user]} within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([session.client.whenReady(), timeout]);
      } catch (error) {
        void session.client.close();
        await Promise.all(sessions.map((s) => s.client.close()));
        throw error;
      } finally {
        clearTimeout(timer);
      }
      sessions.push(session);
      onProgress?.(sessions.length, wanted.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, wanted.length)) }, worker));
  return sessions;
}

/** Due reads, earliest first: a binary heap over parallel arrays (key = user * channels + channel). */
class ReadQueue {
  private readonly due: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.due.length;
  }

  peekDue(): number {
    return this.due[0];
  }

  push(due: number, key: number): void {
    let i = this.due.length;
    this.due.push(due);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.due[parent] <= due) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the earliest read and returns its key. */
  pop(): number {
    const key = this.keys[0];
    const lastDue = this.due.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.due.length > 0) {
      this.due[0] = lastDue;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < this.due.length && this.due[left] < this.due[smallest]) smallest = left;
        if (right < this.due.length && this.due[right] < this.due[smallest]) smallest = right;
        if (smallest === i) break;
        this.swap(i, smallest);
        i = smallest;
      }
    }
    return key;
  }

  private swap(i: number, j: number): void {
    [this.due[i], this.due[j]] = [this.due[j], this.due[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}

export class Swarm {
  /**
   * The messages (when, where, by whom, mentioning whom) draw from one source and the reads
   * from another: reads follow what arrives and when, so with one source a run's timing would
   * change its messages too. Apart, the same seed sends the same messages at the same times
   * in every run, a control and a run with drops alike.
   */
  private readonly messageRandom: SeededRandom;
  private readonly readRandom: SeededRandom;
  private readonly channelIndex = new Map<string, number>();
  private readonly sessionsOfUser: SimSession[][];
  /** Online member sessions per channel: how many updates one message produces. */
  private readonly sessionsPerChannel: number[];
  /** Channel members that have a session (possible authors), per channel. */
  private readonly onlineMembers: number[][];
  /** Cumulative message weights over channels with an online member, for sampling. */
  private readonly channelCumulative: number[] = [];
  private readonly weightedChannels: number[] = [];

  private readonly inFlight = new Map<string, InFlightMessage>();
  /** Updates that came before their message's id was known: when, whether through RESUME, and on which node. */
  private readonly early = new Map<string, Array<{ at: number; replayed: boolean; node: string }>>();
  /** (user, channel) keys with a read scheduled or its ack unanswered: one at a time each. */
  private readonly readsPending = new Set<number>();
  private readonly reads = new ReadQueue();

  private readonly messageHistogram = newHistogram();
  private readonly ackHistogram = newHistogram();
  private readonly allHistogram = newHistogram();
  private readonly secondHistogram = newHistogram();
  private readonly perSecond: SecondSample[] = [];
  private readonly errors: Record<string, number> = {};
  private readonly closes: Record<string, number> = {};

  /** This process's longest GC pause and event-loop delay in the current second. */
  private secondGcMaxMs = 0;
  private secondGcMaxKind = 0;
  private readonly secondLoopDelay = monitorEventLoopDelay({ resolution: 1 });
  private recording = false;
  private closing = false;
  private messagesSent = 0;
  private acksSent = 0;
  private eventsReceived = 0;
  private eventsThisSecond = 0;
  private missedUpdates = 0;
  private missedAcks = 0;
  private duplicates = 0;
  private sequenceGaps = 0;
  private drops = 0;
  private readonly replayedHistogram = newHistogram();
  private readonly crossNodeHistogram = newHistogram();
  private readonly sameNodeHistogram = newHistogram();
  private readonly dropRate: number;
  /** Its own random source, so dropping draws nothing from the load's. */
  private readonly dropSchedule: DropSchedule | null;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly plan: SwarmPlan,
    private readonly sessions: SimSession[],
    private readonly load: LoadShape,
    private readonly options: SwarmOptions = {},
  ) {
    this.messageRandom = new SeededRandom(load.seed ^ 0x5bd1e995);
    this.readRandom = new SeededRandom(load.seed ^ 0x68e31da4);
    this.dropRate = options.dropRate ?? 0;
    this.dropSchedule = this.dropRate > 0 ? new DropSchedule(new SeededRandom(load.seed ^ 0x2545f491), this.dropRate, sessions.length) : null;
    plan.channelIds.forEach((id, c) => this.channelIndex.set(id, c));
    this.sessionsOfUser = plan.userIds.map(() => []);
    for (const session of sessions) this.sessionsOfUser[session.user].push(session);
    this.sessionsPerChannel = plan.members.map((users) => users.reduce((sum, u) => sum + this.sessionsOfUser[u].length, 0));
    this.onlineMembers = plan.members.map((users) => users.filter((u) => this.sessionsOfUser[u].length > 0));
    let total = 0;
    plan.members.forEach((users, c) => {
      if (this.onlineMembers[c].length === 0) return;
      total += users.length ** load.activityExponent;
      this.channelCumulative.push(total);
      this.weightedChannels.push(c);
    });
    for (const session of sessions) {
      const { client } = session;
      // Whatever arrived before the swarm listened is behind this sequence number.
      session.delivery = new SessionDelivery(client.lastSequence);
      this.unsubscribe.push(
        client.on('dispatch', (event, d, s) => this.dispatched(session, event, d, s)),
        client.on('reconnecting', ({ attempt, reason }) => {
          session.away = true;
          if (session.dropping) session.dropping = false;
          else if (this.closing) return;
          // A socket that was up and dropped by itself; later attempts are failed reconnects.
          else if (attempt === 1) this.closes[reason] = (this.closes[reason] ?? 0) + 1;
          else this.count('reconnect:failed');
        }),
        client.on('closed', ({ code }) => {
          if (!this.closing) this.closes[`final:${code}`] = (this.closes[`final:${code}`] ?? 0) + 1;
        }),
      );
    }
  }

  /** Sessions whose socket is up (READY or RESUMED) now. */
  private connectedSessions(): number {
    let n = 0;
    for (const session of this.sessions) if (session.client.state === 'ready') n++;
    return n;
  }

  /** Runs warm-up, measured load and drain; resolves with the report. Sessions are closed at the end. */
  async run(): Promise<SwarmReport> {
    if (this.weightedChannels.length === 0) throw new Error('no channel has an online member: nothing to send');
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.duration <= this.secondGcMaxMs) continue;
        this.secondGcMaxMs = entry.duration;
        this.secondGcMaxKind = (entry as { detail?: { kind?: number } }).detail?.kind ?? 0;
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    this.secondLoopDelay.enable();
    const started = performance.now();
    const measureFrom = started + this.load.warmupSeconds * 1000;
    const loadUntil = measureFrom + this.load.seconds * 1000;
    const meanGapMs = 1000 / this.load.messagesPerSecond;
    let nextMessageAt = started + this.messageRandom.exponential(meanGapMs);
    let nextSecondAt = started + 1000;
    let nextDropAt = this.dropSchedule === null ? Infinity : started + this.dropSchedule.gapMs();
    let second = 0;
    let measureStartedAt = 0;

    await new Promise<void>((resolve) => {
      // A 1 ms tick: sends every arrival that has fallen due (Poisson times, at most ~1 ms late;
      // latency is timed from the actual send) and every read whose delay has passed.
      const tick = setInterval(() => {
        const now = performance.now();
        if (!this.recording && now >= measureFrom) {
          this.recording = true;
          measureStartedAt = Date.now();
          loopDelay.enable();
          nextSecondAt = now + 1000;
          this.secondHistogram.reset();
          this.eventsThisSecond = 0;
        }
        const loading = now < loadUntil;
        while (loading && nextMessageAt <= now && this.messagesSent < this.load.maxMessages) {
          this.sendMessage();
          nextMessageAt += this.messageRandom.exponential(meanGapMs);
        }
        while (loading && this.reads.size > 0 && this.reads.peekDue() <= now) this.sendAck(this.reads.pop());
        // Drops only while loading: the drain lets every dropped session come back and catch up.
        while (loading && nextDropAt <= now) {
          this.drop(this.sessions[this.dropSchedule!.pick()]);
          nextDropAt += this.dropSchedule!.gapMs();
        }
        // `while`: after a stall of this process, every second it missed still gets its sample.
        while (now >= nextSecondAt) {
          nextSecondAt += 1000;
          this.sweep(now);
          const sample = this.closeSecond(this.recording ? ++second : 0);
          if (this.recording && second <= this.load.seconds) this.perSecond.push(sample);
          this.options.onSecond?.(sample, this.connectedSessions(), !this.recording, this.drops);
        }
        if (!loading && (this.drained() || now >= loadUntil + this.load.drainMs)) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });

    loopDelay.disable();
    this.secondLoopDelay.disable();
    gcObserver.disconnect();
    // Whatever is still owed after the drain was not delivered in time.
    for (const message of this.inFlight.values()) if (message.measured) this.missedUpdates += message.remaining;
    for (const session of this.sessions) this.missedAcks += session.pendingAcks.size;
    this.closing = true;
    for (const stop of this.unsubscribe) stop();
    const stats: ReconnectingClientStats = { reconnects: 0, resumes: 0, replayed: 0, invalidSessions: 0, zombies: 0, reconnectRequests: 0, redirects: 0 };
    for (const session of this.sessions) {
      for (const key of Object.keys(stats) as Array<keyof ReconnectingClientStats>) stats[key] += session.client.stats[key];
    }
    await Promise.all(this.sessions.map((s) => Promise.race([s.client.close(), sleep(2000)])));
    return {
      dropRate: this.dropRate,
      drops: this.drops,
      reconnects: stats.reconnects,
      resumes: stats.resumes,
      invalidSessions: stats.invalidSessions,
      replayed: stats.replayed,
      zombies: stats.zombies,
      reconnectRequests: stats.reconnectRequests,
      lost: this.missedUpdates,
      duplicates: this.duplicates,
      sequenceGaps: this.sequenceGaps,
      sessions: this.sessions.length,
      messagesSent: this.messagesSent,
      acksSent: this.acksSent,
      eventsReceived: this.eventsReceived,
      missedUpdates: this.missedUpdates,
      missedAcks: this.missedAcks,
      errors: this.errors,
      closes: this.closes,
      latency: { message: summarize(this.messageHistogram), ack: summarize(this.ackHistogram), all: summarize(this.allHistogram), replayed: summarize(this.replayedHistogram) },
      redirects: stats.redirects,
      crossNode: {
        share: this.messageHistogram.totalCount === 0 ? 0 : Number((this.crossNodeHistogram.totalCount / this.messageHistogram.totalCount).toFixed(4)),
        latency: summarize(this.crossNodeHistogram),
        sameNodeLatency: summarize(this.sameNodeHistogram),
      },
      perSecond: this.perSecond,
      measureStartedAt,
      simulatorLoopDelay: { p99us: Math.round(loopDelay.percentile(99) / 1000), maxUs: Math.round(loopDelay.max / 1000) },
    };
  }

  /** Nothing owed any more: every sent message and ack has reached every session it should. */
  private drained(): boolean {
    return this.inFlight.size === 0 && this.early.size === 0 && this.sessions.every((s) => s.pendingAcks.size === 0);
  }

  /** Drops the session's socket abruptly (no closing handshake), if it is connected; the client resumes by itself. */
  private drop(session: SimSession): void {
    if (session.client.state !== 'ready' || session.socket?.terminate === undefined) return;
    session.dropping = true;
    this.drops++;
    session.socket.terminate();
  }

  /**
   * A connected device of a member of the channel. A device whose socket is down is passed
   * over for another draw (a person whose phone is reconnecting posts from another device, or
   * someone else posts). The first draw is the message's own; the others come from the read
   * source, so that a drop leaves the following messages as they would have been.
   */
  private pickAuthorSession(c: number): SimSession | undefined {
    const authors = this.onlineMembers[c];
    for (let attempt = 0; attempt < 8; attempt++) {
      const random = attempt === 0 ? this.messageRandom : this.readRandom;
      const author = authors[random.below(authors.length)];
      const devices = this.sessionsOfUser[author];
      const session = devices[random.below(devices.length)];
      if (session.client.state === 'ready') return session;
    }
    return undefined;
  }

  private sendMessage(): void {
    const c = this.pickChannel();
    const session = this.pickAuthorSession(c);
    if (session === undefined) return this.count('create:no connected author');
    const members = this.plan.members[c];
    const message: MessageCreate = { channel_id: this.plan.channelIds[c] };
    const random = this.messageRandom;
    if (random.chance(this.load.everyoneProbability)) message.mention_everyone = true;
    else if (members.length > 1 && random.chance(this.load.mentionProbability)) message.mentions = [this.plan.userIds[members[random.below(members.length)]]];
    const measured = this.recording;
    this.messagesSent++;
    const sentAt = performance.now();
    const authorNode = session.client.currentUrl;
    // The answer is the author's state, which acks the new message: last_acked_id is its id
    // (on a cluster the answer comes a little later, and last_message_id may be newer already).
    session.client.createMessage(message).then(
      (state) => this.messageIdKnown(state.last_acked_id!, c, sentAt, measured, authorNode),
      (error: unknown) => this.failed('create', error),
    );
  }

  private messageIdKnown(messageId: string, c: number, sentAt: number, measured: boolean, authorNode: string): void {
    const message: InFlightMessage = { sentAt, authorNode, remaining: this.sessionsPerChannel[c], measured };
    const arrivals = this.early.get(messageId);
    if (arrivals !== undefined) {
      this.early.delete(messageId);
      for (const arrival of arrivals) this.messageReceived(message, arrival.at, arrival.replayed, arrival.node);
    }
    if (message.remaining > 0) this.inFlight.set(messageId, message);
  }

  private messageReceived(message: InFlightMessage, receivedAt: number, replayed: boolean, node: string): void {
    message.remaining--;
    if (!message.measured) return;
    const ms = receivedAt - message.sentAt;
    recordMs(this.messageHistogram, ms);
    recordMs(node === message.authorNode ? this.sameNodeHistogram : this.crossNodeHistogram, ms);
    if (replayed) recordMs(this.replayedHistogram, ms);
    this.recordAny(ms);
  }

  /** Reads the channel for the user: acks the newest message its device has seen there. */
  private sendAck(key: number): void {
    const channels = this.plan.channelIds.length;
    const user = Math.floor(key / channels);
    const c = key - user * channels;
    // Every device still in the session gets the ack's update (one that is reconnecting, through RESUME); a connected one sends it.
    const devices = this.sessionsOfUser[user].filter((s) => s.client.state !== 'closed');
    const connected = devices.filter((s) => s.client.state === 'ready');
    if (connected.length === 0) {
      this.readsPending.delete(key);
      return this.count(devices.length === 0 ? 'ack:closed' : 'ack:no connected device');
    }
    const session = connected[this.readRandom.below(connected.length)];
    const ackId = session.delivery.newestIn(c);
    if (ackId === undefined) {
      this.readsPending.delete(key);
      return;
    }
    this.acksSent++;
    const measured = this.recording;
    const sentAt = performance.now();
    const pending = { ackId, sentAt };
    if (measured) for (const device of devices) device.pendingAcks.set(c, pending);
    session.client.ack(this.plan.channelIds[c], ackId).then(
      () => this.readsPending.delete(key),
      (error: unknown) => {
        this.readsPending.delete(key);
        // Not applied (or not known to be): no device will see it, so nothing is owed.
        for (const device of devices) if (device.pendingAcks.get(c) === pending) device.pendingAcks.delete(c);
        this.failed('ack', error);
      },
    );
  }

  private dispatched(session: SimSession, event: string, d: unknown, s: number): void {
    const receivedAt = performance.now();
    // The dispatches that come on a new socket before RESUMED are the replay (in order, so this is exact).
    const replayed = session.away;
    if (event === 'RESUMED' || event === 'READY') session.away = false;
    const check = session.delivery.sequence(event, s);
    if (check.duplicate) {
      this.duplicates++;
      return;
    }
    this.sequenceGaps += check.skipped;
    if (this.recording) {
      this.eventsReceived++;
      this.eventsThisSecond++;
    }
    if (event === 'READY') {
      // A fresh session after INVALID_SESSION: carry on from its read states.
      const newest: Array<[number, string]> = [];
      for (const state of (d as Ready).read_states) {
        const c = this.channelIndex.get(state.channel_id);
        if (c !== undefined && state.last_message_id !== null) newest.push([c, state.last_message_id]);
      }
      session.delivery.restart(newest);
      return;
    }
    if (event !== 'READ_STATE_UPDATE') return;
    const state = d as ReadState;
    const c = this.channelIndex.get(state.channel_id);
    if (c === undefined) return;

    // An ack shows as the acked id, or a newer one when the user had already read further (an
    // older ack changes nothing but is still sent to every device). The same update may also be
    // a new message's (the author's own message marks the channel read): it is credited below.
    const pendingAck = session.pendingAcks.get(c);
    if (pendingAck !== undefined && state.last_acked_id !== null && compareIds(state.last_acked_id, pendingAck.ackId) >= 0) {
      session.pendingAcks.delete(c);
      const ms = receivedAt - pendingAck.sentAt;
      recordMs(this.ackHistogram, ms);
      this.recordAny(ms);
    }

    const messageId = state.last_message_id;
    if (messageId === null) return;
    const seen = session.delivery.message(c, messageId);
    if (seen === 'older') this.duplicates++;
    if (seen !== 'new') return;
    const message = this.inFlight.get(messageId);
    if (message !== undefined) {
      this.messageReceived(message, receivedAt, replayed, session.client.currentUrl);
      if (message.remaining <= 0) this.inFlight.delete(messageId);
    } else {
      const arrival = { at: receivedAt, replayed, node: session.client.currentUrl };
      const arrivals = this.early.get(messageId);
      if (arrivals === undefined) this.early.set(messageId, [arrival]);
      else arrivals.push(arrival);
    }

    // A member with something unread may read it (once per channel until that ack is answered).
    if (state.unread_count > 0 && this.readRandom.chance(this.load.readProbability)) {
      const key = session.user * this.plan.channelIds.length + c;
      if (!this.readsPending.has(key)) {
        this.readsPending.add(key);
        this.reads.push(receivedAt + this.readRandom.exponential(this.load.readDelayMs), key);
      }
    }
  }

  private recordAny(ms: number): void {
    recordMs(this.allHistogram, ms);
    recordMs(this.secondHistogram, ms);
  }

  private closeSecond(t: number): SecondSample {
    const h: Histogram = this.secondHistogram;
    const sample: SecondSample = {
      t,
      events: this.eventsThisSecond,
      count: h.totalCount,
      p50us: h.totalCount === 0 ? 0 : h.getValueAtPercentile(50),
      p99us: h.totalCount === 0 ? 0 : h.getValueAtPercentile(99),
      maxUs: h.totalCount === 0 ? 0 : h.maxValue,
      simulatorGcMaxMs: Math.round(this.secondGcMaxMs * 100) / 100,
      simulatorGcMaxKind: this.secondGcMaxKind,
      simulatorLoopDelayMaxMs: Math.round(this.secondLoopDelay.max / 1e4) / 100,
    };
    h.reset();
    this.secondGcMaxMs = 0;
    this.secondGcMaxKind = 0;
    this.secondLoopDelay.reset();
    this.eventsThisSecond = 0;
    return sample;
  }

  /** Gives up on updates older than the deadline. */
  private sweep(now: number): void {
    for (const [id, message] of this.inFlight) {
      if (now - message.sentAt < UPDATE_DEADLINE_MS) continue;
      if (message.measured) this.missedUpdates += message.remaining;
      this.inFlight.delete(id);
    }
    for (const [id, arrivals] of this.early) {
      if (now - arrivals[0].at < UPDATE_DEADLINE_MS) continue;
      this.count('update:unmatched', arrivals.length);
      this.early.delete(id);
    }
    for (const session of this.sessions) {
      for (const [c, pending] of session.pendingAcks) {
        if (now - pending.sentAt < UPDATE_DEADLINE_MS) continue;
        this.missedAcks++;
        session.pendingAcks.delete(c);
      }
    }
  }

  private pickChannel(): number {
    const cumulative = this.channelCumulative;
    const target = this.messageRandom.next() * cumulative[cumulative.length - 1];
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return this.weightedChannels[lo];
  }

  private failed(request: 'create' | 'ack', error: unknown): void {
    if (error instanceof GatewayError) this.count(`${request}:${error.code}`);
    else if (error instanceof NotDeliveredError) this.count(`${request}:not delivered`);
    else if (error instanceof GatewayClosedError) this.count(`${request}:closed`);
    else this.count(`${request}:${error instanceof Error ? error.message : String(error)}`);
  }

  private count(what: string, n = 1): void {
    this.errors[what] = (this.errors[what] ?? 0) + n;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
