/**
 * Frames of the inner ↔ outer wire protocol (docs/wire-protocol.md).
 *
 *   byte 0     version (1)
 *   byte 1     frame type (FrameType)
 *   bytes 2-5  payload length, u32 big-endian, at most MAX_PAYLOAD
 *   bytes 6-…  payload: UTF-8 JSON object
 *
 * Every channel (egress handshake, status, logs, audit, IMDS) speaks these frames, so one
 * parser, one fuzz target and one set of limits cover them all.
 */
import { ProxyError } from '../errors/index.js';
import type { PrefixParse } from '../util/read-prefix.js';

export const WIRE_VERSION = 1;
export const HEADER_BYTES = 6;
export const MAX_PAYLOAD = 256 * 1024;

export enum FrameType {
  Hello = 1,
  EgressRequest = 2,
  EgressResponse = 3,
  Status = 4,
  Log = 5,
  AuditRecord = 6,
  AuditAck = 7,
  ImdsRequest = 8,
  ImdsResponse = 9,
  MetricsRequest = 10,
  MetricsResponse = 11,
  ClockRequest = 12,
  ClockResponse = 13,
}

export interface Frame {
  type: FrameType;
  payload: Record<string, unknown>;
}

export class FrameError extends ProxyError {}

export function encodeFrame(type: FrameType, payload: Record<string, unknown>): Buffer {
  const json = JSON.stringify(payload);
  const size = Buffer.byteLength(json, 'utf8');
  if (size > MAX_PAYLOAD) throw new FrameError('frame_too_large', `frame payload of ${size} bytes exceeds ${MAX_PAYLOAD}`, { type, size });
  // Header and payload in one buffer: frames are written once per egress handshake and audit record.
  const frame = Buffer.allocUnsafe(HEADER_BYTES + size);
  frame[0] = WIRE_VERSION;
  frame[1] = type;
  frame.writeUInt32BE(size, 2);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

/** Parse one frame from the front of `buf`; `done: false` when more bytes are needed. */
export function parseFrame(buf: Buffer): PrefixParse<Frame> {
  const [version, type] = buf;
  if (buf.length < HEADER_BYTES || version === undefined || type === undefined) return { done: false };
  if (version !== WIRE_VERSION)
    throw new FrameError('frame_version', `unsupported wire protocol version ${version} (this build speaks ${WIRE_VERSION})`, { version });
  if (!(type in FrameType)) throw new FrameError('frame_type', `unknown frame type ${type}`, { type });
  const len = buf.readUInt32BE(2);
  if (len > MAX_PAYLOAD)
    throw new FrameError('frame_too_large', `frame payload of ${len} bytes exceeds ${MAX_PAYLOAD}`, { type, size: len });
  if (buf.length < HEADER_BYTES + len) return { done: false };
  let payload: unknown;
  try {
    payload = JSON.parse(buf.subarray(HEADER_BYTES, HEADER_BYTES + len).toString('utf8'));
  } catch (err) {
    throw new FrameError('frame_json', `frame payload is not valid JSON: ${(err as Error).message}`, { type });
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    throw new FrameError('frame_json', 'frame payload must be a JSON object', { type });
  return { done: true, value: { type, payload: payload as Record<string, unknown> }, consumed: HEADER_BYTES + len };
}

/** Incremental decoder for channels that carry a stream of frames (status, logs, audit). */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Feed bytes; returns every complete frame. Throws FrameError on a malformed frame. */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const r = parseFrame(this.buf);
      if (!r.done) break;
      frames.push(r.value);
      this.buf = this.buf.subarray(r.consumed);
    }
    return frames;
  }

  /** Bytes of an incomplete frame still held (non-zero at end of stream means truncation). */
  get pending(): number {
    return this.buf.length;
  }
}
