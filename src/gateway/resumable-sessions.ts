// Every identified session of this process by id, so a RESUME can find it, and the clock
// that ends a session once its socket has been gone for the resume window.
//
// A session whose socket closed stays registered with the dispatcher for the window: the
// updates it misses are numbered and buffered. A client that closes with 1000 said it is
// done (as a Discord client does), so its session ends at once.

import type { ReadStateJson } from '../store/persistent-read-states.js';
import type { Encoding } from './codec.js';
import type { Dispatcher } from './dispatch.js';
import { ResumePages } from './resume-pages.js';
import { Session, type SessionLink } from './session.js';

/** Close code with which a client ends its session for good. */
const NORMAL_CLOSURE = 1000;

export interface ResumableSessionsStats {
  /** Identified sessions, with or without a socket. */
  sessions: number;
  /** Sessions without a socket, waiting for a RESUME. */
  detached: number;
  bufferedDispatches: number;
  /** Memory of the pages that hold the buffers, free pages included. */
  bufferBytes: number;
}

export class ResumableSessions {
  private readonly byId = new Map<string, Session>();
  private readonly expiries = new Map<Session, NodeJS.Timeout>();
  /** Where every session's resume buffer keeps its rows. */
  private readonly pages = new ResumePages();

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly windowMs: number,
    private readonly bufferLimit: number,
  ) {}

  /** A new session for an IDENTIFY that succeeded: READY goes out on `link`, fan-out starts. */
  open(userId: string, encoding: Encoding, link: SessionLink, readStates: readonly ReadStateJson[]): Session {
    const session = new Session(userId, encoding, link, this.pages, this.bufferLimit, readStates);
    this.byId.set(session.id, session);
    this.dispatcher.register(
      session,
      readStates.map((state) => state.channel_id),
    );
    return session;
  }

  find(sessionId: string): Session | undefined {
    return this.byId.get(sessionId);
  }

  /** Resumes `session` on `link` from `sequence` (which it covers); returns the dispatches replayed. */
  attach(session: Session, link: SessionLink, sequence: number): number {
    clearTimeout(this.expiries.get(session));
    this.expiries.delete(session);
    return session.attach(link, sequence);
  }

  /** The socket `link` of `session` closed with `code`: the session waits for a RESUME, or ends after a 1000. */
  detach(session: Session, link: SessionLink, code: number): void {
    if (!session.detach(link)) return;
    if (code === NORMAL_CLOSURE) return this.end(session);
    this.expiries.set(
      session,
      setTimeout(() => this.end(session), this.windowMs).unref(),
    );
  }

  /** Ends every session of the users `moved` selects (they moved to another node, where RESUME cannot find them). */
  endUsers(moved: (userId: string) => boolean): void {
    for (const session of [...this.byId.values()]) if (moved(session.userId)) this.end(session);
  }

  get stats(): ResumableSessionsStats {
    let bufferedDispatches = 0;
    for (const session of this.byId.values()) bufferedDispatches += session.bufferedDispatches;
    return { sessions: this.byId.size, detached: this.expiries.size, bufferedDispatches, bufferBytes: this.pages.byteLength };
  }

  private end(session: Session): void {
    if (this.byId.get(session.id) !== session) return;
    clearTimeout(this.expiries.get(session));
    this.expiries.delete(session);
    this.byId.delete(session.id);
    this.dispatcher.unregister(session);
    session.end();
  }
}
