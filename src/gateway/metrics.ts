// What /metrics reports (prom-client): connections, requests by opcode, request-to-dispatch
// latency, closes by code, resumes, readiness, and the read-state engine's and the resumable
// sessions' figures read at scrape time. Process metrics come from prom-client's defaults, among them GC pauses
// (nodejs_gc_duration_seconds, from perf_hooks) and event-loop delay (nodejs_eventloop_lag_*).

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PersistentReadStatesStats } from '../store/persistent-read-states.js';
import type { ReadStateService } from './read-state-service.js';
import type { ResumableSessionsStats } from './resumable-sessions.js';

type StatName = keyof PersistentReadStatesStats;

/** What a cluster node reports (src/cluster/cluster-node.ts). */
export interface ClusterStats {
  nodes: number;
  shards: number;
  shardsOwned: number;
  channelsFollowed: number;
  messagesOut: number;
  messagesIn: number;
  messageBytesOut: number;
  messageBytesIn: number;
  requestsSent: number;
  requestsReceived: number;
  mapChanges: number;
  shardsReleased: number;
  shardsGained: number;
}

const REQUEST_OPS = new Set([1, 2, 6, 20, 21]);

/** Why a RESUME was answered with INVALID_SESSION. */
export type ResumeRefusal = 'malformed' | 'unknown_session' | 'wrong_user' | 'encoding' | 'seq';

/** A factory of gauges that read one figure of `source()` at scrape time. */
function gaugeReading<S>(source: () => S, registers: Registry[]) {
  return (name: string, help: string, read: (s: S) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(source()));
      },
    });
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly closes: Counter<'code'>;
  readonly requestToDispatch: Histogram;
  readonly resumes: Counter;
  readonly resumesRefused: Counter<'reason'>;
  /** IDENTIFYs and RESUMEs sent to the node that serves the user (RECONNECT + 4010). */
  readonly redirects: Counter;
  private readonly requests: Counter<'op'>;
  private readonly requestsByOp = new Map<string, Counter.Internal>();

  constructor(readStates: Pick<ReadStateService, 'stats' | 'ready'>, onlineUsers: () => number, sessions: () => ResumableSessionsStats) {
    const stats = () => readStates.stats;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.connections = new Gauge({ name: 'gateway_connections', help: 'Open WebSocket sessions', registers });
    new Gauge({
      name: 'gateway_online_users',
      help: 'Users with at least one identified session',
      registers,
      collect() {
        this.set(onlineUsers());
      },
    });
    this.closes = new Counter({ name: 'gateway_closes_total', help: 'Sessions closed, by close code', labelNames: ['code'], registers });
    this.requests = new Counter({ name: 'gateway_requests_total', help: 'Client payloads received, by opcode', labelNames: ['op'], registers });
    this.requestToDispatch = new Histogram({
      name: 'gateway_request_to_dispatch_seconds',
      help: 'From receiving a MESSAGE_CREATE or MESSAGE_ACK to sending its READ_STATE_UPDATE to the requester',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });

    this.resumes = new Counter({ name: 'gateway_resumes_total', help: 'RESUMEs answered with the missed dispatches and RESUMED', registers });
    this.resumesRefused = new Counter({
      name: 'gateway_resumes_refused_total',
      help: 'RESUMEs answered with INVALID_SESSION, by reason (malformed, unknown_session: expired or never known, wrong_user, encoding, seq: outside the buffer)',
      labelNames: ['reason'],
      registers,
    });
    this.redirects = new Counter({ name: 'gateway_redirects_total', help: 'IDENTIFYs and RESUMEs answered with RECONNECT to the node that serves the user, then 4010', registers });
    const sessionGauge = gaugeReading(sessions, registers);
    sessionGauge('gateway_sessions', 'Identified sessions, with or without a socket', (s) => s.sessions);
    sessionGauge('gateway_resumable_sessions', 'Sessions whose socket is gone, kept for RESUME until the resume window ends', (s) => s.detached);
    sessionGauge('gateway_resume_buffered_dispatches', 'Dispatches held in resume buffers, over all sessions', (s) => s.bufferedDispatches);
    sessionGauge('gateway_resume_buffer_bytes', 'Memory the resume buffers take: the pages holding their rows, free pages included', (s) => s.bufferBytes);

    // /readyz's answer as a metric too, so an alert can follow what a load balancer follows.
    gaugeReading(() => readStates.ready, registers)(
      'gateway_ready',
      '1 while /readyz answers 200 (store reachable, schema in place, writes succeeding), else 0',
      (ready) => (ready ? 1 : 0),
    );
    const gauge = gaugeReading(stats, registers);
    gauge('readstate_engine_size', 'Read states held in memory', (s) => s.size);
    gauge('readstate_engine_capacity', 'Read states the memory table can hold', (s) => s.capacity);
    gauge('readstate_dirty', 'Read states changed and not yet written', (s) => s.dirty);
    gauge('readstate_pending_writes', 'Read states handed to the store and not yet confirmed', (s) => s.pendingWrites);
    gauge('readstate_write_lag_seconds', 'How long the oldest write waiting for the store has waited', (s) => s.writeLagMs / 1000);
    gauge('readstate_cache_hit_ratio', 'Hits / (hits + misses) of the read-state cache since start', (s) =>
      s.hits + s.misses === 0 ? 1 : s.hits / (s.hits + s.misses),
    );

    // Counters mirror monotonic engine totals: each scrape adds what happened since the last.
    const counter = (name: string, help: string, stat: StatName) => {
      let seen = 0;
      return new Counter({
        name,
        help,
        registers,
        collect() {
          const now = stats()[stat];
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };
    counter('readstate_cache_hits_total', 'Read-state lookups answered from memory', 'hits');
    counter('readstate_cache_misses_total', 'Read-state lookups that loaded from the store', 'misses');
    counter('readstate_evictions_total', 'Read states evicted from memory', 'evictions');
    counter('readstate_flushes_total', 'Write-behind flushes that took due read states', 'flushes');
    counter('readstate_store_writes_total', 'Records written to the store', 'writes');
    counter('readstate_store_write_errors_total', 'Failed store writes (retried)', 'writeErrors');
    counter('readstate_store_load_errors_total', 'Failed store loads', 'loadErrors');
  }

  /** A cluster node's figures (src/cluster), read at scrape time. */
  watchCluster(stats: () => ClusterStats): void {
    const registers = [this.registry];
    const gauge = gaugeReading(stats, registers);
    gauge('cluster_nodes', 'Gateway nodes in this node\'s shard map (alive, ready, not leaving)', (s) => s.nodes);
    gauge('cluster_shards_owned', 'Shards this node owns', (s) => s.shardsOwned);
    gauge('cluster_shards', 'Shards in the cluster (GATEWAY_SHARDS)', (s) => s.shards);
    gauge('cluster_channels_followed', 'Channels whose messages this node receives from their owners', (s) => s.channelsFollowed);
    const counter = (name: string, help: string, read: (s: ClusterStats) => number) => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read(stats());
          if (now > seen) this.inc(now - seen);
          seen = now;
        },
      });
    };
    counter('cluster_messages_out_total', 'Messages this node sequenced and published to the channel\'s other holders', (s) => s.messagesOut);
    counter('cluster_messages_in_total', 'Messages received from channel owners (including this node\'s own, echoed)', (s) => s.messagesIn);
    counter('cluster_message_bytes_out_total', 'Bytes of published messages', (s) => s.messageBytesOut);
    counter('cluster_message_bytes_in_total', 'Bytes of received messages', (s) => s.messageBytesIn);
    counter('cluster_node_requests_sent_total', 'Requests to other nodes (posts to a channel owner, channel records, forwarded API calls)', (s) => s.requestsSent);
    counter('cluster_node_requests_received_total', 'Requests from other nodes answered', (s) => s.requestsReceived);
    counter('cluster_map_changes_total', 'Shard map changes (a node joined, left or was lost)', (s) => s.mapChanges);
    counter('cluster_shards_released_total', 'Shards handed to another node', (s) => s.shardsReleased);
    counter('cluster_shards_gained_total', 'Shards taken over', (s) => s.shardsGained);
  }

  /** Counts a payload under its opcode; opcodes clients may not send count as "other" (bounded labels). */
  countRequest(op: number): void {
    const label = REQUEST_OPS.has(op) ? String(op) : 'other';
    let child = this.requestsByOp.get(label);
    if (child === undefined) {
      child = this.requests.labels({ op: label });
      this.requestsByOp.set(label, child);
    }
    child.inc();
  }
}
