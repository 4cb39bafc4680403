// The typed client, on a socket that records what it sends: its requests, read back by the
// gateway's own decoder, are standard MessagePack whatever the caller left out, and mean
// the same in both encodings; and it keeps received payloads only when asked to.

import { describe, expect, it } from 'vitest';
import { type ClientSocketHandlers, type Encoding, GatewayClient } from '../../src/client/gateway-client.js';
import { type ClientRequest, decodeFrame, encodeHeartbeatAck, encodeHello } from '../../src/gateway/codec.js';

const CHANNEL = '1234567890123456789';
const MESSAGE = '1234567890123456790';
const USER = '18446744073709551615';

/** A connected client (HELLO delivered) whose frames land in `sent`, as bytes. */
async function recordedClient(encoding: Encoding, keepReceived?: boolean) {
  const sent: Uint8Array[] = [];
  let server: ClientSocketHandlers | undefined;
  const connecting = GatewayClient.connect('ws://gateway.test/gateway', {
    encoding,
    heartbeats: false,
    keepReceived,
    socketFactory: (_url, handlers) => {
      server = handlers;
      return {
        // A copy: the encoder may reuse its buffer for the next frame.
        send: (data) => sent.push(typeof data === 'string' ? new TextEncoder().encode(data) : data.slice()),
        close: (code = 1000, reason = '') => handlers.close(code, reason),
      };
    },
  });
  server!.message(encodeHello(encoding, 41_250));
  return { client: await connecting, sent, server: server! };
}

/** Every request the client makes, optional fields left out in each way a caller can. */
async function everyRequest(encoding: Encoding): Promise<ClientRequest[]> {
  const { client, sent } = await recordedClient(encoding);
  const answers: Array<Promise<unknown>> = [
    client.identify('a.token'),
    client.createMessage({ channel_id: CHANNEL }),
    // A caller forwarding its own optional values.
    client.createMessage({ channel_id: CHANNEL, mentions: undefined, mention_everyone: undefined }),
    client.createMessage({ channel_id: CHANNEL, mentions: [USER], mention_everyone: true }),
    client.ack(CHANNEL, MESSAGE),
  ];
  client.heartbeat();
  // No server answers: closing settles every request.
  await client.close();
  await Promise.allSettled(answers);
  return sent.map((frame) => decodeFrame(frame, encoding));
}

describe('GatewayClient requests', () => {
  it('are standard MessagePack the gateway accepts, the same requests as in JSON', async () => {
    const expected: ClientRequest[] = [
      { kind: 'identify', token: 'a.token' },
      { kind: 'create', channelId: CHANNEL, mentions: [], mentionEveryone: false, nonce: 1 },
      { kind: 'create', channelId: CHANNEL, mentions: [], mentionEveryone: false, nonce: 2 },
      { kind: 'create', channelId: CHANNEL, mentions: [USER], mentionEveryone: true, nonce: 3 },
      { kind: 'ack', channelId: CHANNEL, messageId: MESSAGE, nonce: 4 },
      { kind: 'heartbeat' },
    ];
    expect(await everyRequest('json')).toEqual(expected);
    expect(await everyRequest('msgpack')).toEqual(expected);
  });
});

describe('GatewayClient received', () => {
  it('keeps every payload only when asked to', async () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      const kept = await recordedClient(encoding, true);
      const dropped = await recordedClient(encoding);
      for (const { server } of [kept, dropped]) server.message(encodeHeartbeatAck(encoding));
      expect(kept.client.received.map((payload) => payload.op)).toEqual([10, 11]);
      expect(dropped.client.received).toEqual([]);
    }
  });
});
