// The dispatches a session sent after READY, kept so that a client whose socket dropped can
// RESUME and receive, with their original sequence numbers, the ones it missed
// (docs/protocol.md v2 "Reconnect and resume").
//
// Why rows of typed arrays: every session keeps its buffer, connected or not, for up to
// GATEWAY_RESUME_BUFFER dispatches. An object or an encoded frame per dispatch would put
// millions of small objects on the heap, the major-GC cost the engine exists to avoid, and
// a user opening many sessions could grow it at will. Here a dispatch is one row: a kind
// byte, three ids as uint32 halves and two counts (33 bytes), in a ring that starts small
// and doubles up to the limit, so a quiet session costs little. Frames are encoded again
// only on replay, which is rare. Nonces (only on answers to the session's own requests,
// so bounded by its rate limit) sit in a Map beside the rows.

import { formatSnowflake } from '../engine/snowflake.js';
import { emptyView } from '../engine/read-states.js';
import { encodeDispatch, type Encoding, type Frame, type Nonce, PreparedReadState } from './codec.js';

const UPDATE = 1;
const DELETE = 2;
const RESUMED = 3;
/** Where replay() assembles each update before encoding it. */
const replayView = emptyView();

const IDS_PER_ROW = 6;
const COUNTS_PER_ROW = 2;
/** Bytes a row takes: kind, ids, counts. */
export const RESUME_ROW_BYTES = 1 + IDS_PER_ROW * 4 + COUNTS_PER_ROW * 4;
const FIRST_ROWS = 16;

export class ResumeBuffer {
  private rows: number;
  private kinds: Uint8Array;
  private ids: Uint32Array;
  private counts: Uint32Array;
  /** Row of the oldest dispatch held. */
  private head = 0;
  private held = 0;
  /** Sequence of the newest dispatch sent (READY's until another follows). */
  private last: number;
  private readonly nonces = new Map<number, Nonce>();

  /** `limit`: dispatches kept at most; `afterSequence`: the READY's `s`, not kept itself. */
  constructor(
    private readonly limit: number,
    afterSequence: number,
  ) {
    this.last = afterSequence;
    this.rows = Math.min(limit, FIRST_ROWS);
    this.kinds = new Uint8Array(this.rows);
    this.ids = new Uint32Array(this.rows * IDS_PER_ROW);
    this.counts = new Uint32Array(this.rows * COUNTS_PER_ROW);
  }

  /** Sequence of the newest dispatch. */
  get lastSequence(): number {
    return this.last;
  }

  /** Dispatches held. */
  get size(): number {
    return this.held;
  }

  /** Memory the rows take (allocated, not only filled). */
  get bytes(): number {
    return this.rows * RESUME_ROW_BYTES;
  }

  /** True when every dispatch after `sequence` is held, so a RESUME from there loses nothing. */
  covers(sequence: number): boolean {
    return sequence <= this.last && sequence >= this.last - this.held;
  }

  /** Records a READ_STATE_UPDATE; returns its sequence. */
  recordUpdate(update: PreparedReadState, nonce: Nonce | undefined): number {
    const row = this.append();
    if (row < 0) return this.last;
    const v = update.values;
    const at = row * IDS_PER_ROW;
    for (let i = 0; i < IDS_PER_ROW; i++) this.ids[at + i] = v[i];
    this.counts[row * COUNTS_PER_ROW] = v[6];
    this.counts[row * COUNTS_PER_ROW + 1] = v[7];
    // A null id is (0, 0), as in the engine.
    this.kinds[row] = UPDATE;
    if (nonce !== undefined) this.nonces.set(this.last, nonce);
    return this.last;
  }

  /** Records a READ_STATE_DELETE; returns its sequence. */
  recordDelete(channelHalves: Uint32Array): number {
    const row = this.append();
    if (row < 0) return this.last;
    this.kinds[row] = DELETE;
    this.ids[row * IDS_PER_ROW] = channelHalves[0];
    this.ids[row * IDS_PER_ROW + 1] = channelHalves[1];
    return this.last;
  }

  /** Records RESUMED (its only field, the session id, is the session's); returns its sequence. */
  recordResumed(): number {
    const row = this.append();
    if (row >= 0) this.kinds[row] = RESUMED;
    return this.last;
  }

  /** Encodes every dispatch after `sequence` (which covers() accepted) and hands each frame to `send`, in order. */
  replay(sequence: number, encoding: Encoding, sessionId: string, send: (frame: Frame) => void): number {
    const first = this.last - this.held + 1;
    let sent = 0;
    for (let s = Math.max(sequence + 1, first); s <= this.last; s++) {
      const row = (this.head + (s - first)) % this.rows;
      const kind = this.kinds[row];
      const at = row * IDS_PER_ROW;
      switch (kind) {
        case UPDATE: {
          const view = replayView;
          view.channelHi = this.ids[at];
          view.channelLo = this.ids[at + 1];
          view.lastMessageHi = this.ids[at + 2];
          view.lastMessageLo = this.ids[at + 3];
          view.ackHi = this.ids[at + 4];
          view.ackLo = this.ids[at + 5];
          view.unread = this.counts[row * COUNTS_PER_ROW];
          view.mentions = this.counts[row * COUNTS_PER_ROW + 1];
          send(PreparedReadState.ofView(view).frame(encoding, s, this.nonces.get(s)));
          break;
        }
        case DELETE:
          send(encodeDispatch(encoding, 'READ_STATE_DELETE', { channel_id: formatSnowflake(this.ids[at], this.ids[at + 1]) }, s));
          break;
        case RESUMED:
          send(encodeDispatch(encoding, 'RESUMED', { session_id: sessionId }, s));
          break;
      }
      sent++;
    }
    return sent;
  }

  /** Takes the next sequence and the row it is kept in (-1 with a limit of 0: nothing is kept). */
  private append(): number {
    this.last++;
    if (this.limit === 0) return -1;
    if (this.held === this.rows) {
      if (this.rows < this.limit) this.grow();
      else {
        // Full: the oldest dispatch (last - held, as `last` already counts the new one) makes room.
        this.nonces.delete(this.last - this.held);
        this.head = (this.head + 1) % this.rows;
        this.held--;
      }
    }
    const row = (this.head + this.held) % this.rows;
    this.held++;
    return row;
  }

  /** Doubles the ring (up to the limit), its rows laid out oldest first. */
  private grow(): void {
    const rows = Math.min(this.limit, this.rows * 2);
    this.kinds = unrolled(this.kinds, new Uint8Array(rows), this.head, 1);
    this.ids = unrolled(this.ids, new Uint32Array(rows * IDS_PER_ROW), this.head, IDS_PER_ROW);
    this.counts = unrolled(this.counts, new Uint32Array(rows * COUNTS_PER_ROW), this.head, COUNTS_PER_ROW);
    this.rows = rows;
    this.head = 0;
  }
}

/** Copies a full ring whose oldest row is `head` into `to`, oldest first: two block copies. */
function unrolled<T extends Uint8Array | Uint32Array>(from: T, to: T, head: number, wordsPerRow: number): T {
  const split = head * wordsPerRow;
  to.set(from.subarray(split));
  to.set(from.subarray(0, split), from.length - split);
  return to;
}
