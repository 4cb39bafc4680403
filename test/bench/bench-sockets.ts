// Client sockets of the network benchmarks: the `ws` package, JSON text frames, no
// compression, as the load tools and the typed client on Node use it.

import WebSocket from 'ws';

export function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Opens a gateway session with `token` and resolves once READY arrived. */
export async function identifiedSocket(url: string, token: string): Promise<WebSocket> {
  const ws = await openSocket(url);
  await new Promise<void>((resolve, reject) => {
    const onMessage = (data: Buffer) => {
      if (!data.toString().includes('"READY"')) return;
      ws.off('message', onMessage);
      resolve();
    };
    ws.on('message', onMessage);
    ws.once('close', (code) => reject(new Error(`closed with ${code} before READY`)));
    ws.send(JSON.stringify({ op: 2, d: { token } }));
  });
  return ws;
}
