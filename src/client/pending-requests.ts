// Requests waiting for their answer, by nonce: the READ_STATE_UPDATE or ERROR that carries
// the nonce settles the request's promise.
//
// One tracker can outlive many sockets (ReconnectingClient shares it across them), so an
// answer replayed by RESUME on a new socket still finds its request, and nonces stay unique
// for the whole session.

import type { ReadState } from './gateway-client.js';

/** The server answered a request with ERROR (op 12). */
export class GatewayError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'GatewayError';
  }
}

interface Pending {
  resolve(value: ReadState): void;
  reject(error: Error): void;
}

export class PendingRequests {
  private readonly byNonce = new Map<number, Pending>();
  private nextNonce = 1;

  get size(): number {
    return this.byNonce.size;
  }

  /** Registers a request; `send` puts it on the wire with the nonce it is given. */
  add(send: (nonce: number) => void): Promise<ReadState> {
    const nonce = this.nextNonce++;
    return new Promise((resolve, reject) => {
      this.byNonce.set(nonce, { resolve, reject });
      send(nonce);
    });
  }

  /** A READ_STATE_UPDATE's data: resolves the request whose nonce it carries. */
  answered(d: ReadState & { nonce?: number | string }): void {
    if (typeof d.nonce !== 'number') return;
    const request = this.byNonce.get(d.nonce);
    if (request === undefined) return;
    this.byNonce.delete(d.nonce);
    const { nonce: _, ...state } = d;
    request.resolve(state);
  }

  /** An ERROR's data: rejects the request whose nonce it carries. */
  failed(d: { code: number; message: string; nonce?: number | string }): void {
    if (typeof d.nonce !== 'number') return;
    const request = this.byNonce.get(d.nonce);
    if (request === undefined) return;
    this.byNonce.delete(d.nonce);
    request.reject(new GatewayError(d.code, d.message));
  }

  rejectAll(error: Error): void {
    const requests = [...this.byNonce.values()];
    this.byNonce.clear();
    for (const request of requests) request.reject(error);
  }
}
