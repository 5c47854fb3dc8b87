/**
 * The audit stream between inner and outer (vsock port 17003; docs/wire-protocol.md).
 *
 * The inner numbers every record it keeps (`seq`, from 1, per `boot_id`), turns it into its final
 * JSON line (hash-chained, shared/audit/chain.ts) and sends AuditRecord frames; the outer writes
 * each line verbatim (it must not re-serialise: the chain is over the exact bytes) and answers
 * AuditAck frames naming the highest `seq` it has written. The inner keeps every record until it
 * is acknowledged and sends all unacknowledged records again on each new connection, so an outer
 * restart loses nothing (the outer drops the duplicates it can recognise). Delivery is at-least-once; gaps are impossible by construction
 * and drops are reported by an `audit_dropped` record.
 */
import { FrameError, FrameType, encodeFrame, type Frame } from '../wire/frame.js';

/** A line is one JSON object; a longer one is a hostile or broken sender. */
const MAX_LINE_BYTES = 64 * 1024;

export interface AuditEnvelope {
  boot_id: string;
  seq: number;
  /** The record's line as the inner built it, without the newline. */
  line: string;
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
  if (typeof p.boot_id !== 'string' || p.boot_id.length === 0 || p.boot_id.length > 64)
    throw new FrameError('frame_invalid', `${what}: bad boot_id`, {});
  if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0) throw new FrameError('frame_invalid', `${what}: bad seq`, {});
  return { boot_id: p.boot_id, seq: p.seq };
}

export function parseAuditRecord(frame: Frame): AuditEnvelope {
  if (frame.type !== FrameType.AuditRecord)
    throw new FrameError('frame_unexpected', `expected an AuditRecord frame, got type ${frame.type}`, { type: frame.type });
  const { boot_id, seq } = checkBootSeq(frame.payload, 'audit record');
  const line = frame.payload.line;
  // One record, one line: an embedded newline would let a sender split it into two.
  if (typeof line !== 'string' || line.length > MAX_LINE_BYTES || !line.startsWith('{') || /[\r\n]/.test(line)) {
    throw new FrameError('frame_invalid', 'audit record: bad line', {});
  }
  return { boot_id, seq, line };
}

export function parseAuditAck(frame: Frame): AuditAck {
  if (frame.type !== FrameType.AuditAck)
    throw new FrameError('frame_unexpected', `expected an AuditAck frame, got type ${frame.type}`, { type: frame.type });
  return checkBootSeq(frame.payload, 'audit ack');
}

/** The line the outer writes: exactly the inner's bytes. */
export function auditLine(env: AuditEnvelope): string {
  return `${env.line}\n`;
}
