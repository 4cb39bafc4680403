// Frames on their way to sockets.
//
// Inside a uWS callback (a client frame being handled: the fan-out of a resident
// MESSAGE_CREATE, most acks) a frame is sent at once: uWS corks the socket being handled,
// and a member's socket gets one frame per message, so there is nothing to batch, and
// waiting would add the rest of the poll phase to every delivery (and a copy of the frame).
// Outside one (answers from promise continuations, after a store load) each send would be
// its own write syscall, so those frames are queued and every frame a socket gets during
// that turn of the loop leaves in one corked write, right after the loop's I/O phase
// (setImmediate). A socket with frames queued keeps queueing, so its frames leave in order.

import type { WebSocket } from 'uWebSockets.js';
import type { Frame } from './codec.js';

/** A socket's pending frames (null when nothing is queued). */
export interface OutboxSlot {
  queued: Frame[] | null;
  binary: boolean;
  closed: boolean;
}

export class Outbox {
  private readonly due: Array<[WebSocket<unknown>, OutboxSlot]> = [];
  private scheduled = false;
  private readonly flushAll = () => this.flush();
  /** uWS callbacks on the stack (app.ts runs them through inCallback). */
  private callbacks = 0;

  /** Runs a uWS callback: frames sent during it go out at once. */
  inCallback(callback: () => void): void {
    this.callbacks++;
    try {
      callback();
    } finally {
      this.callbacks--;
    }
  }

  /** Sends a frame, or queues it for the end of the turn. Byte frames may be views of a reused buffer: queued ones are copied. */
  send(ws: WebSocket<unknown>, slot: OutboxSlot, frame: Frame): void {
    if (slot.closed) return;
    if (this.callbacks > 0 && slot.queued === null) {
      ws.send(frame, slot.binary);
      return;
    }
    // new Uint8Array(view) copies (Buffer#slice would not).
    const copy = typeof frame === 'string' ? frame : new Uint8Array(frame);
    if (slot.queued === null) {
      slot.queued = [copy];
      this.due.push([ws, slot]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushAll);
      }
    } else {
      slot.queued.push(copy);
    }
  }

  /** Writes what one socket has queued now (before closing it, so nothing queued is lost). */
  flushSocket(ws: WebSocket<unknown>, slot: OutboxSlot): void {
    const frames = slot.queued;
    if (frames === null || slot.closed) return;
    slot.queued = [];
    ws.cork(() => {
      // A send can close the socket (backpressure limit): stop there.
      for (let i = 0; i < frames.length && !slot.closed; i++) ws.send(frames[i], slot.binary);
    });
  }

  private flush(): void {
    this.scheduled = false;
    const due = this.due.splice(0, this.due.length);
    for (const [ws, slot] of due) {
      this.flushSocket(ws, slot);
      slot.queued = null;
    }
  }
}
