// Client frames in, server frames out, for both encodings (docs/protocol.md "Connection", "Opcodes").
//
// decodeFrame turns a frame into one typed request or the close code that answers it; it
// knows nothing of sessions, so "before IDENTIFY" and "twice" are decided by the session.
// The encoders write `{op, d, s, t}`; a READ_STATE_UPDATE going to many sessions is
// prepared once (PreparedReadState) and only its sequence (and the requester's nonce)
// is written per session.

import type { ReadStateView } from '../engine/read-states.js';
import { formatSnowflake, parseSnowflake, writeDecimalDigits, writeSnowflakeDigits } from '../engine/snowflake.js';
import type { ReadStateJson } from '../store/persistent-read-states.js';
import { decodeMessagePack, encodeMessagePack } from './msgpack.js';

export type Encoding = 'json' | 'msgpack';

/** Largest client payload accepted (docs/protocol.md); larger closes with 4002. */
export const MAX_PAYLOAD_BYTES = 4096;
const MAX_NONCE_CODE_POINTS = 64;

export const Op = {
  dispatch: 0,
  heartbeat: 1,
  identify: 2,
  resume: 6,
  reconnect: 7,
  invalidSession: 9,
  hello: 10,
  heartbeatAck: 11,
  error: 12,
  messageCreate: 20,
  messageAck: 21,
} as const;

export const CloseCode = {
  /** Going away: the server stops. */
  goingAway: 1001,
  unknownError: 4000,
  unknownOpcode: 4001,
  decodeError: 4002,
  notAuthenticated: 4003,
  authenticationFailed: 4004,
  alreadyAuthenticated: 4005,
  /** The session was resumed from another socket. */
  resumedElsewhere: 4007,
  rateLimited: 4008,
  sessionTimedOut: 4009,
  /** The user is served by another node: reconnect to the URL of the RECONNECT before it. */
  movedToAnotherNode: 4010,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export const ErrorCode = {
  unknownChannel: 10003,
  unknownMessage: 10008,
  missingAccess: 50001,
  invalidBody: 50035,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_MESSAGES: Record<ErrorCode, string> = {
  10003: 'Unknown Channel',
  10008: 'Unknown Message',
  50001: 'Missing Access',
  50035: 'Invalid Form Body',
};

export const CLOSE_REASONS: Record<CloseCode, string> = {
  1001: 'Going away',
  4000: 'Unknown error',
  4001: 'Unknown opcode',
  4002: 'Decode error',
  4003: 'Not authenticated',
  4004: 'Authentication failed',
  4005: 'Already authenticated',
  4007: 'Session resumed elsewhere',
  4008: 'Rate limited',
  4009: 'Session timed out',
  4010: 'Served by another node',
};

/** A string of at most 64 code points, or a safe integer. */
export type Nonce = string | number;

export type ClientRequest =
  | { kind: 'heartbeat' }
  /** token is null when IDENTIFY carries none (an authentication failure). */
  | { kind: 'identify'; token: string | null }
  /**
   * RESUME: token null as for IDENTIFY (4004); sessionId and seq null when missing or
   * ill-typed, which the session answers with INVALID_SESSION.
   */
  | { kind: 'resume'; token: string | null; sessionId: string | null; seq: number | null }
  | { kind: 'create'; channelId: string; mentions: string[]; mentionEveryone: boolean; nonce: Nonce | undefined }
  | { kind: 'ack'; channelId: string; messageId: string; nonce: Nonce | undefined }
  /** A known request opcode with an ill-formed body: error 50035 (nonce echoed when well formed). */
  | { kind: 'invalid'; op: number; nonce: Nonce | undefined }
  /** The frame closes the session. */
  | { kind: 'close'; code: typeof CloseCode.unknownOpcode | typeof CloseCode.decodeError };

const CLOSE_DECODE: ClientRequest = { kind: 'close', code: CloseCode.decodeError };
const CLOSE_OPCODE: ClientRequest = { kind: 'close', code: CloseCode.unknownOpcode };
const HEARTBEAT: ClientRequest = { kind: 'heartbeat' };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a frame with the session's encoding (whatever the frame type) and checks it. */
export function decodeFrame(frame: Uint8Array, encoding: Encoding): ClientRequest {
  if (frame.length > MAX_PAYLOAD_BYTES) return CLOSE_DECODE;
  let payload: unknown;
  try {
    payload = encoding === 'json' ? JSON.parse(utf8.decode(frame)) : decodeMessagePack(frame);
  } catch {
    // Any error: bad input, or a RangeError should decoding ever run out of stack.
    return CLOSE_DECODE;
  }
  if (!isRecord(payload)) return CLOSE_DECODE;
  const op = payload.op;
  if (typeof op !== 'number' || !Number.isInteger(op)) return CLOSE_DECODE;
  const d = payload.d;
  switch (op) {
    case Op.heartbeat:
      // d is the last sequence seen, or null; anything else is an ill-typed field.
      if (d === undefined || d === null || (Number.isSafeInteger(d) && (d as number) >= 0)) return HEARTBEAT;
      return { kind: 'invalid', op, nonce: undefined };
    case Op.identify:
      return { kind: 'identify', token: tokenOf(d) };
    case Op.resume:
      return decodeResume(d);
    case Op.messageCreate:
      return decodeCreate(d);
    case Op.messageAck:
      return decodeAck(d);
    default:
      return CLOSE_OPCODE;
  }
}

function tokenOf(d: unknown): string | null {
  return isRecord(d) && typeof d.token === 'string' && d.token !== '' ? d.token : null;
}

/** Session ids are 32 lowercase hex digits (Session.id); anything else cannot name a session. */
const SESSION_ID = /^[0-9a-f]{32}$/;

function decodeResume(d: unknown): ClientRequest {
  const fields = isRecord(d) ? d : {};
  const sessionId = typeof fields.session_id === 'string' && SESSION_ID.test(fields.session_id) ? fields.session_id : null;
  const seq = Number.isSafeInteger(fields.seq) && (fields.seq as number) >= 0 ? (fields.seq as number) : null;
  return { kind: 'resume', token: tokenOf(d), sessionId, seq };
}

function decodeCreate(d: unknown): ClientRequest {
  if (!isRecord(d)) return { kind: 'invalid', op: Op.messageCreate, nonce: undefined };
  const nonce = nonceOf(d.nonce);
  if (nonce === INVALID) return { kind: 'invalid', op: Op.messageCreate, nonce: undefined };
  const invalid: ClientRequest = { kind: 'invalid', op: Op.messageCreate, nonce };
  const channelId = canonicalSnowflake(d.channel_id);
  if (channelId === null) return invalid;
  const mentions: string[] = [];
  if (d.mentions !== undefined && d.mentions !== null) {
    if (!Array.isArray(d.mentions)) return invalid;
    for (const mention of d.mentions as unknown[]) {
      const id = canonicalSnowflake(mention);
      if (id === null) return invalid;
      mentions.push(id);
    }
  }
  const everyone = d.mention_everyone;
  if (everyone !== undefined && everyone !== null && typeof everyone !== 'boolean') return invalid;
  return { kind: 'create', channelId, mentions, mentionEveryone: everyone === true, nonce };
}

function decodeAck(d: unknown): ClientRequest {
  if (!isRecord(d)) return { kind: 'invalid', op: Op.messageAck, nonce: undefined };
  const nonce = nonceOf(d.nonce);
  if (nonce === INVALID) return { kind: 'invalid', op: Op.messageAck, nonce: undefined };
  const channelId = canonicalSnowflake(d.channel_id);
  const messageId = canonicalSnowflake(d.message_id);
  if (channelId === null || messageId === null) return { kind: 'invalid', op: Op.messageAck, nonce };
  return { kind: 'ack', channelId, messageId, nonce };
}

/** A plain object (JSON object or MessagePack map), not an array, bytes or null. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

const snowflakeScratch = new Uint32Array(2);

/**
 * The canonical form (no leading zeros) of a snowflake sent as a decimal string, or null
 * for anything else: a number, not digits, empty, over 20 digits, above 2^64 - 1.
 */
export function canonicalSnowflake(value: unknown): string | null {
  if (typeof value !== 'string' || !parseSnowflake(value, snowflakeScratch, 0)) return null;
  if (value.length === 1 || value.charCodeAt(0) !== 48) return value;
  const stripped = value.replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

const INVALID = Symbol('invalid nonce');
// Lone surrogates cannot be written as UTF-8, so could not be echoed unchanged.
const LONE_SURROGATE = /\p{Surrogate}/u;

function nonceOf(value: unknown): Nonce | undefined | typeof INVALID {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : INVALID;
  if (typeof value !== 'string') return INVALID;
  if (value.length > MAX_NONCE_CODE_POINTS * 2 || LONE_SURROGATE.test(value)) return INVALID;
  if (value.length > MAX_NONCE_CODE_POINTS) {
    let codePoints = 0;
    for (const _ of value) codePoints++;
    if (codePoints > MAX_NONCE_CODE_POINTS) return INVALID;
  }
  return value;
}

// ---- Server frames ------------------------------------------------------------------------

/**
 * A frame to send: JSON text or MessagePack bytes, as the session's encoding says. A JSON
 * READ_STATE_UPDATE is built as bytes (see PreparedReadState) and still goes out as text.
 */
export type Frame = string | Uint8Array;

export function encodeHello(encoding: Encoding, heartbeatIntervalMs: number): Frame {
  return encodePayload(encoding, Op.hello, { heartbeat_interval: heartbeatIntervalMs });
}

export function encodeHeartbeatAck(encoding: Encoding): Frame {
  return encodePayload(encoding, Op.heartbeatAck, null);
}

export function encodeReconnect(encoding: Encoding, url: string | undefined): Frame {
  return encodePayload(encoding, Op.reconnect, url === undefined ? {} : { url });
}

export function encodeInvalidSession(encoding: Encoding): Frame {
  return encodePayload(encoding, Op.invalidSession, false);
}

export function encodeError(encoding: Encoding, code: ErrorCode, nonce: Nonce | undefined): Frame {
  const d: { code: number; message: string; nonce?: Nonce } = { code, message: ERROR_MESSAGES[code] };
  if (nonce !== undefined) d.nonce = nonce;
  return encodePayload(encoding, Op.error, d);
}

/** A dispatch of any shape (READY, READ_STATE_DELETE). */
export function encodeDispatch(encoding: Encoding, event: string, d: unknown, sequence: number): Frame {
  if (encoding === 'json') return `{"op":0,"t":${JSON.stringify(event)},"s":${sequence},"d":${JSON.stringify(d)}}`;
  return encodeMessagePack({ op: Op.dispatch, t: event, s: sequence, d });
}

function encodePayload(encoding: Encoding, op: number, d: unknown): Frame {
  if (encoding === 'json') return `{"op":${op},"d":${JSON.stringify(d)}}`;
  return encodeMessagePack({ op, d });
}

/** `{op: 0, t: "READ_STATE_UPDATE", s:` in MessagePack: a map of 4 entries (fixmap 0x84), then `s`'s value and `d`. */
const UPDATE_HEAD = Buffer.concat([Buffer.of(0x84), ...['op', Op.dispatch, 't', 'READ_STATE_UPDATE', 's'].map((part) => Buffer.from(encodeMessagePack(part)))]);
const D_KEY = Buffer.from(encodeMessagePack('d'));
/** Ids parsed by PreparedReadState.ofState. */
const halves = new Uint32Array(6);
/** Where READ_STATE_UPDATE frames are assembled: ids, counts and a 64-code-point nonce stay far below 1 KiB. */
const frameBuffer = Buffer.allocUnsafe(1024);
/** frameBuffer's first n bytes, by n: every frame starts at 0, so a view per length is made once, not per frame. */
const frameViews: Array<Uint8Array | undefined> = [];
function frameOf(length: number): Uint8Array {
  return (frameViews[length] ??= frameBuffer.subarray(0, length));
}

// The fixed parts of a JSON READ_STATE_UPDATE, in field order.
const JSON_UPDATE_HEAD = Buffer.from('{"op":0,"t":"READ_STATE_UPDATE","s":', 'latin1');
const JSON_CHANNEL = Buffer.from(',"d":{"channel_id":', 'latin1');
const JSON_LAST_MESSAGE = Buffer.from(',"last_message_id":', 'latin1');
const JSON_LAST_ACKED = Buffer.from(',"last_acked_id":', 'latin1');
const JSON_UNREAD = Buffer.from(',"unread_count":', 'latin1');
const JSON_MENTIONS = Buffer.from(',"mention_count":', 'latin1');
const JSON_NONCE = Buffer.from(',"nonce":', 'latin1');
const JSON_NULL = Buffer.from('null', 'latin1');
const JSON_END = Buffer.from('}}', 'latin1');

function put(part: Uint8Array, at: number): number {
  frameBuffer.set(part, at);
  return at + part.length;
}

/** A message id from its uint32 halves, quoted, or null for (0, 0) as in the engine. */
function putMessageId(hi: number, lo: number, at: number): number {
  return hi === 0 && lo === 0 ? put(JSON_NULL, at) : putId(hi, lo, at);
}

/** An id from its uint32 halves, quoted. */
function putId(hi: number, lo: number, at: number): number {
  frameBuffer[at] = 0x22;
  at = writeSnowflakeDigits(hi, lo, frameBuffer, at + 1);
  frameBuffer[at] = 0x22;
  return at + 1;
}

/** A safe integer's decimal digits. */
function putInteger(value: number, at: number): number {
  if (value < 0) {
    frameBuffer[at++] = 0x2d;
    value = -value;
  }
  return writeDecimalDigits(value, 1, frameBuffer, at);
}

/**
 * A READ_STATE_UPDATE whose body is encoded once per encoding and reused for every session
 * it goes to; each session only adds its sequence number, the requester its nonce. It holds
 * the state as numbers (ids as uint32 halves, (0, 0) for null), the engine's own form, so a
 * fan-out to many members builds no id string per member.
 */
export class PreparedReadState {
  private msgpack: Uint8Array | undefined;
  private json: ReadStateJson | undefined;

  /**
   * Channel, last message and last acked ids as (hi, lo) pairs ((0, 0) for null), then unread
   * and mention counts: doubles, so the halves and any count are exact.
   */
  private constructor(readonly values: Float64Array) {}

  static ofView(view: ReadStateView): PreparedReadState {
    return PreparedReadState.reusable().setView(view);
  }

  /**
   * One to refill with setView() for each member of a fan-out, so a message to many members
   * allocates nothing per member. Whoever holds it must be done with it (frames sent, values
   * recorded) before the next refill.
   */
  static reusable(): PreparedReadState {
    return new PreparedReadState(new Float64Array(8));
  }

  /** Holds `view` from now on; frames built for the previous state are dropped. */
  setView(view: ReadStateView): this {
    const values = this.values;
    values[0] = view.channelHi;
    values[1] = view.channelLo;
    values[2] = view.lastMessageHi;
    values[3] = view.lastMessageLo;
    values[4] = view.ackHi;
    values[5] = view.ackLo;
    values[6] = view.unread;
    values[7] = view.mentions;
    this.msgpack = undefined;
    this.json = undefined;
    return this;
  }

  static ofState(state: ReadStateJson): PreparedReadState {
    const values = new Float64Array(8);
    parseSnowflake(state.channel_id, halves, 0);
    if (state.last_message_id !== null) parseSnowflake(state.last_message_id, halves, 2);
    else halves[2] = halves[3] = 0;
    if (state.last_acked_id !== null) parseSnowflake(state.last_acked_id, halves, 4);
    else halves[4] = halves[5] = 0;
    values.set(halves);
    values[6] = state.unread_count;
    values[7] = state.mention_count;
    const update = new PreparedReadState(values);
    update.json = state;
    return update;
  }

  /** The state as the protocol writes it (built once, for MessagePack and nonces). */
  get state(): ReadStateJson {
    if (this.json !== undefined) return this.json;
    const v = this.values;
    return (this.json = {
      channel_id: formatSnowflake(v[0], v[1]),
      last_message_id: v[2] === 0 && v[3] === 0 ? null : formatSnowflake(v[2], v[3]),
      last_acked_id: v[4] === 0 && v[5] === 0 ? null : formatSnowflake(v[4], v[5]),
      unread_count: v[6],
      mention_count: v[7],
    });
  }

  /**
   * The frame for one session. Bytes are assembled in a buffer shared by every frame: valid
   * until the next frame is built, so send or copy them at once.
   */
  frame(encoding: Encoding, sequence: number, nonce: Nonce | undefined): Frame {
    // JSON is written as bytes: no string is built per member and session.
    if (encoding === 'json') return this.jsonBytes(sequence, nonce);
    // The head and the sequence are copied out before the body is encoded (same buffer).
    frameBuffer.set(UPDATE_HEAD);
    let at = UPDATE_HEAD.length;
    const sequenceBytes = encodeMessagePack(sequence);
    frameBuffer.set(sequenceBytes, at);
    at += sequenceBytes.length;
    frameBuffer.set(D_KEY, at);
    at += D_KEY.length;
    const d = nonce === undefined ? (this.msgpack ??= new Uint8Array(encodeMessagePack(this.state))) : encodeMessagePack({ ...this.state, nonce });
    frameBuffer.set(d, at);
    return frameOf(at + d.length);
  }

  /** The JSON text of the frame, as bytes (the text JSON.stringify would give). */
  private jsonBytes(sequence: number, nonce: Nonce | undefined): Uint8Array {
    const v = this.values;
    let at = putInteger(sequence, put(JSON_UPDATE_HEAD, 0));
    at = putId(v[0], v[1], put(JSON_CHANNEL, at));
    at = putMessageId(v[2], v[3], put(JSON_LAST_MESSAGE, at));
    at = putMessageId(v[4], v[5], put(JSON_LAST_ACKED, at));
    at = putInteger(v[6], put(JSON_UNREAD, at));
    at = putInteger(v[7], put(JSON_MENTIONS, at));
    // Only the requester's frame has one: at most 64 code points, escaped, well within the buffer.
    if (nonce !== undefined) {
      at = put(JSON_NONCE, at);
      at += frameBuffer.write(JSON.stringify(nonce), at, 'utf8');
    }
    return frameOf(put(JSON_END, at));
  }
}
