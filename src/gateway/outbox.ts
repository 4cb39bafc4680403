// Frames on their way to sockets, written once per event-loop turn and corked per socket.
//
// Why: most answers are sent from promise continuations, outside any uWS callback, where
// each send would be its own write syscall. Pipelined requests would then cost a syscall
// per answer where an echo server pays one per batch. Queued here, every frame a socket
// gets during one turn of the loop leaves in one corked write, right after the loop's I/O
// phase (setImmediate), in the order the frames were queued.
//
// Byte frames are copied into one arena shared by every socket for the turn, not into a
// Uint8Array each: a copy of more than 64 bytes gets a backing store of its own outside the
// heap, and at 20,000 updates a second those allocations and their sweeping by the GC were
// the largest per-update cost left. uWS copies what it is given, so the arena is reused as
// soon as the turn's frames are written.

import type { WebSocket } from 'uWebSockets.js';
import type { Frame } from './codec.js';

const FIRST_ARENA_BYTES = 256 * 1024;
/** An arena grown past this by a burst is given back after the turn. */
const KEPT_ARENA_BYTES = 4 * 1024 * 1024;

/** A socket's pending frames: strings, and byte frames as (start, end) offsets into the arena. */
export interface OutboxSlot {
  queued: Array<string | number>;
  /** Listed among the sockets to write at the end of the turn. */
  due: boolean;
  binary: boolean;
  closed: boolean;
}

export function newOutboxSlot(binary: boolean): OutboxSlot {
  return { queued: [], due: false, binary, closed: false };
}

export class Outbox {
  private readonly dueSockets: Array<WebSocket<unknown>> = [];
  private readonly dueSlots: OutboxSlot[] = [];
  private arena = new Uint8Array(FIRST_ARENA_BYTES);
  private used = 0;
  private scheduled = false;
  private readonly flushAll = () => this.flush();
  /** The socket whose frames writeCorked() writes: one closure for every cork, not one per socket and turn. */
  private corkedWs: WebSocket<unknown> | undefined;
  private corkedSlot: OutboxSlot | undefined;
  private readonly writeCorked = () => this.writeQueued(this.corkedWs!, this.corkedSlot!);

  /** Queues a frame. Byte frames may be views of a reused buffer: they are copied. */
  send(ws: WebSocket<unknown>, slot: OutboxSlot, frame: Frame): void {
    if (slot.closed) return;
    if (typeof frame === 'string') {
      slot.queued.push(frame);
    } else {
      const start = this.reserve(frame.length);
      this.arena.set(frame, start);
      slot.queued.push(start, this.used);
    }
    if (slot.due) return;
    slot.due = true;
    this.dueSockets.push(ws);
    this.dueSlots.push(slot);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAll);
    }
  }

  /** Writes what one socket has queued now (before closing it, so nothing queued is lost). */
  flushSocket(ws: WebSocket<unknown>, slot: OutboxSlot): void {
    if (slot.queued.length === 0 || slot.closed) return;
    this.corkedWs = ws;
    this.corkedSlot = slot;
    ws.cork(this.writeCorked);
    this.corkedWs = this.corkedSlot = undefined;
    slot.queued.length = 0;
  }

  private writeQueued(ws: WebSocket<unknown>, slot: OutboxSlot): void {
    const queued = slot.queued;
    // A send can close the socket (backpressure limit): stop there.
    for (let i = 0; i < queued.length && !slot.closed; i++) {
      const item = queued[i];
      if (typeof item === 'string') ws.send(item, slot.binary);
      else ws.send(this.arena.subarray(item, queued[++i] as number), slot.binary);
    }
  }

  private flush(): void {
    this.scheduled = false;
    const sockets = this.dueSockets;
    const slots = this.dueSlots;
    for (let i = 0; i < sockets.length; i++) {
      this.flushSocket(sockets[i], slots[i]);
      slots[i].due = false;
      // A closed socket's frames are dropped (nothing reads them).
      slots[i].queued.length = 0;
    }
    sockets.length = 0;
    slots.length = 0;
    this.used = 0;
    if (this.arena.length > KEPT_ARENA_BYTES) this.arena = new Uint8Array(FIRST_ARENA_BYTES);
  }

  /** Room for `bytes` more in the arena; a full arena is replaced by one twice as large, queued frames copied over. */
  private reserve(bytes: number): number {
    const start = this.used;
    if (start + bytes > this.arena.length) {
      let size = this.arena.length * 2;
      while (size < start + bytes) size *= 2;
      const larger = new Uint8Array(size);
      larger.set(this.arena.subarray(0, start));
      this.arena = larger;
    }
    this.used = start + bytes;
    return start;
  }
}
