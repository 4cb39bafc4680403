// The client's socket in a browser (or any runtime with a WHATWG WebSocket).

import type { SocketFactory } from './gateway-client.js';

export const browserSocketFactory: SocketFactory = (url, handlers) => {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => handlers.open();
  ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => handlers.message(typeof event.data === 'string' ? event.data : new Uint8Array(event.data));
  ws.onclose = (event: CloseEvent) => handlers.close(event.code, event.reason);
  return {
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
  };
};
