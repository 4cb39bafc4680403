// The dispatches a session sent after READY, kept so that a client whose socket dropped can
// RESUME and receive, with their original sequence numbers, the ones it missed
// (docs/protocol.md v2 "Reconnect and resume").
//
// Why rows of typed arrays: every session keeps its buffer, connected or not, for up to
// GATEWAY_RESUME_BUFFER dispatches. An object or an encoded frame per dispatch would put
// millions of small objects on the heap, the major-GC cost the engine exists to avoid, and
// a user opening many sessions could grow it at will. Here a dispatch is one row of nine
// uint32 words (a kind, three ids as halves, two counts) in pages of 32 rows that every
// session takes from one ResumePages; a buffer grows a page at a time up to the limit, then
// reuses its oldest page, so a quiet session costs nothing and a busy one allocates nothing
// once full. Frames are encoded again only on replay, which is rare. Nonces (only on
// answers to the session's own requests, so bounded by its rate limit) sit in a Map beside
// the rows.

import { formatSnowflake } from '../engine/snowflake.js';
import { emptyView } from '../engine/read-states.js';
import { encodeDispatch, type Encoding, type Frame, type Nonce, PreparedReadState } from './codec.js';
import { ROW_SHIFT, ROWS_PER_PAGE, type ResumePages } from './resume-pages.js';

const UPDATE = 1;
const DELETE = 2;
const RESUMED = 3;
/** Where replay() assembles each update before encoding it. */
const replayView = emptyView();

export class ResumeBuffer {
  /** The pages holding the rows, oldest first. */
  private readonly pages: number[] = [];
  /** Sequence of the dispatch in the first row of pages[0]. */
  private firstPageSequence: number;
  private held = 0;
  /** Sequence of the newest dispatch sent (READY's until another follows). */
  private last: number;
  /** Released: nothing is kept any more. */
  private ended = false;
  private readonly nonces = new Map<number, Nonce>();

  /** `limit`: dispatches kept at most; `afterSequence`: the READY's `s`, not kept itself. */
  constructor(
    private readonly pool: ResumePages,
    private readonly limit: number,
    afterSequence: number,
  ) {
    this.last = afterSequence;
    this.firstPageSequence = afterSequence + 1;
  }

  /** Sequence of the newest dispatch. */
  get lastSequence(): number {
    return this.last;
  }

  /** Dispatches held. */
  get size(): number {
    return this.held;
  }

  /** True when every dispatch after `sequence` is held, so a RESUME from there loses nothing. */
  covers(sequence: number): boolean {
    return sequence <= this.last && sequence >= this.last - this.held;
  }

  /** Records a READ_STATE_UPDATE; returns its sequence. */
  recordUpdate(update: PreparedReadState, nonce: Nonce | undefined): number {
    const at = this.append();
    if (at < 0) return this.last;
    const words = this.pool.words(this.pages[this.pages.length - 1]);
    const v = update.values;
    words[at] = UPDATE;
    // Ids and counts as the engine holds them (a null id is (0, 0)).
    for (let i = 0; i < 8; i++) words[at + 1 + i] = v[i];
    if (nonce !== undefined) this.nonces.set(this.last, nonce);
    return this.last;
  }

  /** Records a READ_STATE_DELETE; returns its sequence. */
  recordDelete(channelHalves: Uint32Array): number {
    const at = this.append();
    if (at < 0) return this.last;
    const words = this.pool.words(this.pages[this.pages.length - 1]);
    words[at] = DELETE;
    words[at + 1] = channelHalves[0];
    words[at + 2] = channelHalves[1];
    return this.last;
  }

  /** Records RESUMED (its only field, the session id, is the session's); returns its sequence. */
  recordResumed(): number {
    const at = this.append();
    if (at >= 0) this.pool.words(this.pages[this.pages.length - 1])[at] = RESUMED;
    return this.last;
  }

  /** Encodes every dispatch after `sequence` (which covers() accepted) and hands each frame to `send`, in order. */
  replay(sequence: number, encoding: Encoding, sessionId: string, send: (frame: Frame) => void): number {
    const first = this.last - this.held + 1;
    let sent = 0;
    for (let s = Math.max(sequence + 1, first); s <= this.last; s++) {
      const index = s - this.firstPageSequence;
      const page = this.pages[index >>> ROW_SHIFT];
      const words = this.pool.words(page);
      const at = this.pool.at(page, index & (ROWS_PER_PAGE - 1));
      switch (words[at]) {
        case UPDATE: {
          const view = replayView;
          view.channelHi = words[at + 1];
          view.channelLo = words[at + 2];
          view.lastMessageHi = words[at + 3];
          view.lastMessageLo = words[at + 4];
          view.ackHi = words[at + 5];
          view.ackLo = words[at + 6];
          view.unread = words[at + 7];
          view.mentions = words[at + 8];
          send(PreparedReadState.ofView(view).frame(encoding, s, this.nonces.get(s)));
          break;
        }
        case DELETE:
          send(encodeDispatch(encoding, 'READ_STATE_DELETE', { channel_id: formatSnowflake(words[at + 1], words[at + 2]) }, s));
          break;
        case RESUMED:
          send(encodeDispatch(encoding, 'RESUMED', { session_id: sessionId }, s));
          break;
      }
      sent++;
    }
    return sent;
  }

  /** Gives the pages back: the session ended, nothing more is kept or replayed. */
  release(): void {
    this.ended = true;
    for (const page of this.pages) this.pool.release(page);
    this.pages.length = 0;
    this.held = 0;
    this.nonces.clear();
  }

  /**
   * Takes the next sequence and the first word of the row it is kept in, in the newest
   * page (-1 when nothing is kept: a limit of 0, or released).
   */
  private append(): number {
    this.last++;
    if (this.limit === 0 || this.ended) return -1;
    if (this.held === this.limit) {
      // Full: the oldest dispatch (last - held, as `last` already counts the new one) makes room.
      const oldest = this.last - this.held;
      this.nonces.delete(oldest);
      this.held--;
      // Its page emptied: the page is reused for the newest rows.
      if (oldest + 1 - this.firstPageSequence === ROWS_PER_PAGE) {
        this.pages.push(this.pages.shift()!);
        this.firstPageSequence += ROWS_PER_PAGE;
      }
    }
    const index = this.last - this.firstPageSequence;
    if (index >>> ROW_SHIFT === this.pages.length) this.pages.push(this.pool.alloc());
    this.held++;
    return this.pool.at(this.pages[index >>> ROW_SHIFT], index & (ROWS_PER_PAGE - 1));
  }
}
