// Frames on their way to sockets, written once per event-loop turn and corked per socket.
//
// Why: most answers are sent from promise continuations, outside any uWS callback, where
// each send would be its own write syscall. Pipelined requests would then cost a syscall
// per answer where an echo server pays one per batch. Queued here, every frame a socket
// gets during one turn of the loop leaves in one corked write, right after the loop's I/O
// phase (setImmediate), in the order the frames were queued.

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

  /** Queues a frame. Msgpack frames may be views of a reused buffer: they are copied. */
  send(ws: WebSocket<unknown>, slot: OutboxSlot, frame: Frame): void {
    if (slot.closed) return;
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
