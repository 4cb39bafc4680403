// The fan-out benchmark's layout and the messages between its orchestrator (fanout.ts) and
// its load processes (fanout-load.ts): channel c has members c·M … c·M + M − 1, each user a
// member of exactly one channel, every id above the demo's and far below 2^53.

export const userIdOf = (channel: number, member: number, members: number) => String(1_000_000 + channel * members + member);
export const channelIdOf = (channel: number) => String(9_000_000 + channel);

export interface LoadConfig {
  impl: 'gateway' | 'uws-pubsub';
  url: string;
  /** Channels [firstChannel, firstChannel + channels) of the layout, each with `members` users. */
  firstChannel: number;
  channels: number;
  members: number;
  jwtSecret: string;
}

export interface LoadRunResult {
  sent: number;
  expected: number;
  received: number;
  /** Samples written to the samples file: Float32 latency µs, then Uint16 send second. */
  samples: number;
  cpuSeconds: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Event-loop utilisation over the measured seconds (1 = never idle). */
  utilization: number;
}


