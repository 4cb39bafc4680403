// The client's socket on Node, from the `ws` package (Node 20 has no global WebSocket).

import WebSocket from 'ws';
import { type ConnectOptions, GatewayClient, type SocketFactory } from './gateway-client.js';

export const nodeSocketFactory: SocketFactory = (url, handlers) => {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('open', () => handlers.open());
  ws.on('message', (data: Buffer, isBinary: boolean) => handlers.message(isBinary ? new Uint8Array(data) : data.toString('utf8')));
  ws.on('close', (code: number, reason: Buffer) => handlers.close(code, reason.toString('utf8')));
  // A failed handshake (say, 400 for a bad encoding) is followed by 'close' (1006).
  ws.on('error', () => {});
  return {
    send: (data, binary) => ws.send(data, { binary }),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
  };
};

/** Connects with the `ws` package; resolves once HELLO arrived. */
export function connectNode(url: string, options: Omit<ConnectOptions, 'socketFactory'> = {}): Promise<GatewayClient> {
  return GatewayClient.connect(url, { ...options, socketFactory: nodeSocketFactory });
}
