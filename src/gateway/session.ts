// An identified session: its user, its encoding, the sequence of its dispatches and the
// buffer that lets a client RESUME it (docs/protocol.md "Session", v2 "Reconnect and resume").
//
// A session outlives its socket. The socket (a Connection) is attached after IDENTIFY and
// after every successful RESUME; in between, the session stays registered for fan-out, so
// every update it would have sent is numbered and kept in the resume buffer as if sent.

import { randomBytes } from 'node:crypto';
import { parseSnowflake } from '../engine/snowflake.js';
import type { ReadStateJson } from '../store/persistent-read-states.js';
import { CloseCode, encodeDispatch, type Encoding, type Frame, type Nonce, type PreparedReadState } from './codec.js';
import { ResumeBuffer } from './resume-buffer.js';
import type { ResumePages } from './resume-pages.js';

/** READY.v: 2 since RESUME exists. */
export const GATEWAY_VERSION = 2;

/** The socket side of a session (a Connection). */
export interface SessionLink {
  send(frame: Frame): void;
  close(code: CloseCode): void;
}

const channelScratch = new Uint32Array(2);

export class Session {
  readonly id = randomBytes(16).toString('hex');
  /**
   * Settles once the requests in flight for this session are answered (null: none).
   * A RESUME waits for it, so every answer to a request the old socket delivered is
   * replayed before RESUMED.
   */
  settling: Promise<void> | null = null;
  private link: SessionLink | null;
  private readonly buffer: ResumeBuffer;

  /** Sends READY (sequence 1) on `link`. */
  constructor(
    readonly userId: string,
    readonly encoding: Encoding,
    link: SessionLink,
    pages: ResumePages,
    bufferLimit: number,
    readStates: readonly ReadStateJson[],
  ) {
    this.link = link;
    const readySequence = 1;
    this.buffer = new ResumeBuffer(pages, bufferLimit, readySequence);
    link.send(encodeDispatch(encoding, 'READY', { v: GATEWAY_VERSION, session_id: this.id, user: { id: userId }, read_states: readStates }, readySequence));
  }

  get isAttached(): boolean {
    return this.link !== null;
  }

  get bufferedDispatches(): number {
    return this.buffer.size;
  }

  /** True when a RESUME from `sequence` can be answered without a gap. */
  covers(sequence: number): boolean {
    return this.buffer.covers(sequence);
  }

  /** Sends a READ_STATE_UPDATE prepared for many sessions; the nonce only to the requester. */
  sendReadState(update: PreparedReadState, nonce: Nonce | undefined): void {
    const sequence = this.buffer.recordUpdate(update, nonce);
    this.link?.send(update.frame(this.encoding, sequence, nonce));
  }

  sendDelete(channelId: string): void {
    parseSnowflake(channelId, channelScratch, 0);
    const sequence = this.buffer.recordDelete(channelScratch);
    this.link?.send(encodeDispatch(this.encoding, 'READ_STATE_DELETE', { channel_id: channelId }, sequence));
  }

  /**
   * Moves the session to `link`: a socket still attached is closed with 4007, then every
   * dispatch after `sequence` is sent again with its own `s`, then RESUMED. Returns how many
   * were replayed.
   */
  attach(link: SessionLink, sequence: number): number {
    const previous = this.link;
    this.link = link;
    previous?.close(CloseCode.resumedElsewhere);
    const replayed = this.buffer.replay(sequence, this.encoding, this.id, (frame) => link.send(frame));
    link.send(encodeDispatch(this.encoding, 'RESUMED', { session_id: this.id }, this.buffer.recordResumed()));
    return replayed;
  }

  /** The session is over (expired, closed with 1000, or moved): its buffer's pages go back to the pool. */
  end(): void {
    this.buffer.release();
  }

  /** `link` closed: true if it was the session's socket (a socket replaced by a RESUME is not). */
  detach(link: SessionLink): boolean {
    if (this.link !== link) return false;
    this.link = null;
    return true;
  }
}
