/**
 * The audit stream between inner and outer (vsock port 17003; docs/wire-protocol.md).
 *
 * The inner numbers every record it keeps (`seq`, from 1, per `boot_id`) and sends AuditRecord
 * frames; the outer writes them and answers AuditAck frames naming the highest `seq` it has
 * written. The inner keeps every record until it is acknowledged and sends all unacknowledged
 * records again on each new connection, so an outer restart loses nothing (the outer drops the
 * duplicates it can recognise). Delivery is at-least-once; gaps are impossible by construction
 * and drops are reported by an `audit_dropped` record.
 */
import { FrameError, FrameType, encodeFrame, type Frame } from '../wire/frame.js';
import type { AuditRecord } from './record.js';

export interface AuditEnvelope {
  boot_id: string;
  seq: number;
  record: AuditRecord;
}

export interface AuditAck {
  boot_id: string;
  /** Every record of this boot with a `seq` up to and including this one is written. */
  seq: number;
}

export function encodeAuditRecord(env: AuditEnvelope): Buffer {
  return encodeFrame(FrameType.AuditRecord, { ...env });
}

export function encodeAuditAck(ack: AuditAck): Buffer {
  return encodeFrame(FrameType.AuditAck, { ...ack });
}

function checkBootSeq(p: Record<string, unknown>, what: string): { boot_id: string; seq: number } {
  if (typeof p.boot_id !== 'string' || p.boot_id.length === 0 || p.boot_id.length > 64) throw new FrameError('frame_invalid', `${what}: bad boot_id`, {});
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0) throw new FrameError('frame_invalid', `${what}: bad seq`, {});
  return { boot_id: p.boot_id, seq: p.seq };
}

export function parseAuditRecord(frame: Frame): AuditEnvelope {
  if (frame.type !== FrameType.AuditRecord) throw new FrameError('frame_unexpected', `expected an AuditRecord frame, got type ${frame.type}`, { type: frame.type });
  const { boot_id, seq } = checkBootSeq(frame.payload, 'audit record');
  const record = frame.payload.record;
  if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new FrameError('frame_invalid', 'audit record: bad record', {});
  const type = (record as { type?: unknown }).type;
  if (type !== 'egress' && type !== 'audit_dropped') throw new FrameError('frame_invalid', 'audit record: unknown record type', {});
  return { boot_id, seq, record: record as AuditRecord };
}

export function parseAuditAck(frame: Frame): AuditAck {
  if (frame.type !== FrameType.AuditAck) throw new FrameError('frame_unexpected', `expected an AuditAck frame, got type ${frame.type}`, { type: frame.type });
  return checkBootSeq(frame.payload, 'audit ack');
}

/** The line the outer writes: stream position first, then the record's own fields. */
export function auditLine(env: AuditEnvelope): string {
  return `${JSON.stringify({ seq: env.seq, boot_id: env.boot_id, ...env.record })}\n`;
}
