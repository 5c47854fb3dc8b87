/**
 * The inner end of the audit stream: numbers records, keeps them in a bounded buffer until the
 * outer acknowledges them, and sends them again after every reconnect.
 *
 * When the buffer is full (the outer is down for long), new records are dropped and counted; as
 * soon as there is room, an `audit_dropped` record with the count takes their place in the
 * stream, so a reader sees exactly where and how many records are missing — never a silent gap.
 * Dropping rather than blocking is deliberate: blocking would stop the enclave's egress whenever
 * the untrusted parent stops reading, which hands the parent a switch over the app.
 *
 * Every kept record is hash-chained to the one before it here, inside the enclave; the boot's
 * attestation is line 1, and a signed checkpoint follows every `checkpoint.records` records, every
 * `checkpoint.intervalMs` (when anything is new) and at `close()` (shared/audit/chain.ts).
 */
import type net from 'node:net';
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import { chainLine, GENESIS_PREV, lineHash, type AuditCheckpointRecord } from '../../shared/audit/chain.js';
import type { AuditRecord } from '../../shared/audit/record.js';
import { encodeAuditRecord, parseAuditAck } from '../../shared/audit/stream.js';
import { formatAddress, type Address } from '../../shared/transport/index.js';
import { Redialer } from '../../shared/transport/redial.js';
import { FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import type { AuditEvidence } from './evidence.js';

const log = logger('audit-sender');

export interface AuditSenderOptions {
  /** Where the outer's collector listens (vsock://parent:17003 in production). */
  address: Address;
  /** Records kept while unacknowledged; beyond it new records are dropped and counted. */
  maxBuffered: number;
  /** The boot's attested checkpoint key. */
  evidence: AuditEvidence;
  /** A signed checkpoint after this many chained records, and at this interval when anything is new. */
  checkpoint: { records: number; intervalMs: number };
  connectTimeoutMs?: number;
  /** Reconnect backoff bounds. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

interface Pending {
  seq: number;
  frame: Buffer;
}

export interface AuditSenderStats {
  buffered: number;
  /** Records dropped since start (each reported in an audit_dropped record). */
  droppedTotal: number;
  lastSeq: number;
  ackedSeq: number;
  connected: boolean;
}

export class AuditSender {
  readonly bootId: string;
  private readonly opts: Required<AuditSenderOptions>;
  private buffer: Pending[] = [];
  private nextSeq = 1;
  /** Hash of the last chained line. */
  private head = GENESIS_PREV;
  /** First seq not yet covered by a checkpoint. */
  private uncheckpointedFrom = 1;
  private checkpointDue = false;
  private closed = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private ackedSeq = 0;
  private droppedTotal = 0;
  private drop: { count: number; first: string; last: string } | null = null;
  private readonly channel: Redialer;
  /** Highest seq written to the current connection. */
  private sentSeq = 0;
  private waiters: Array<() => void> = [];

  constructor(opts: AuditSenderOptions) {
    this.opts = { connectTimeoutMs: 2000, retryMinMs: 100, retryMaxMs: 2000, ...opts };
    this.bootId = opts.evidence.bootId;
    this.chain(opts.evidence.bootRecord);
    this.channel = new Redialer({
      ...this.opts,
      what: 'audit collector',
      log,
      onConnected: (socket) => this.onConnected(socket),
      onLost: () => log.warn({ unacknowledged: this.buffer.length }, 'audit stream lost; reconnecting'),
    });
  }

  start(): void {
    this.channel.start();
    if (this.opts.checkpoint.intervalMs > 0) {
      this.checkpointTimer = setInterval(() => this.checkpointIfNew(), this.opts.checkpoint.intervalMs);
      this.checkpointTimer.unref();
    }
  }

  /**
   * End this boot's stream with a closing checkpoint (shutdown). It is appended even into a full
   * buffer: it is the one line that proves the tail is complete. Later records are refused.
   */
  close(): void {
    if (this.closed) return;
    clearInterval(this.checkpointTimer);
    this.flushDropNotice({ force: true });
    this.appendCheckpoint(true);
    this.closed = true;
  }

  /** Stop reconnecting and close the stream; unacknowledged records are abandoned. */
  stop(): void {
    clearInterval(this.checkpointTimer);
    this.channel.stop();
    this.channel.socket?.destroy();
  }

  emit(record: AuditRecord): void {
    if (this.closed) {
      log.warn({ type: record.type }, 'audit record after the closing checkpoint; not recorded');
      return;
    }
    this.flushDropNotice();
    if (this.drop !== null || this.buffer.length >= this.opts.maxBuffered) {
      // The clock is read only for a drop (the record itself carries its own times).
      const now = new Date().toISOString();
      this.droppedTotal += 1;
      if (this.drop) {
        this.drop.count += 1;
        this.drop.last = now;
      } else this.drop = { count: 1, first: now, last: now };
      return;
    }
    this.enqueue(record);
  }

  stats(): AuditSenderStats {
    return {
      buffered: this.buffer.length,
      droppedTotal: this.droppedTotal,
      lastSeq: this.nextSeq - 1,
      ackedSeq: this.ackedSeq,
      connected: this.channel.socket !== null,
    };
  }

  /** Resolves once every record emitted so far is acknowledged (shutdown, tests). */
  drained(): Promise<void> {
    if (this.buffer.length === 0 && this.drop === null) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private enqueue(record: AuditRecord): void {
    this.chain(record);
    if (this.nextSeq - this.uncheckpointedFrom >= this.opts.checkpoint.records) this.checkpointDue = true;
    this.flushCheckpoint();
    this.sendPending();
  }

  /** The record's line, linked to the one before; kept until acknowledged. */
  private chain(record: AuditRecord | AuditCheckpointRecord | AuditEvidence['bootRecord'], sign = false): void {
    const seq = this.nextSeq++;
    const unsigned = chainLine({ seq, boot_id: this.bootId, prev: this.head }, record);
    const line = sign ? this.opts.evidence.sign(unsigned) : unsigned;
    this.head = lineHash(line);
    this.buffer.push({ seq, frame: encodeAuditRecord({ boot_id: this.bootId, seq, line }) });
  }

  private appendCheckpoint(closing: boolean): void {
    const first = this.uncheckpointedFrom;
    const last = this.nextSeq - 1;
    this.chain({ type: 'audit_checkpoint', ts: new Date().toISOString(), first_seq: first, last_seq: last, closing }, true);
    this.uncheckpointedFrom = this.nextSeq;
    this.checkpointDue = false;
    this.sendPending();
  }

  private checkpointIfNew(): void {
    if (this.closed || this.nextSeq === this.uncheckpointedFrom) return;
    this.checkpointDue = true;
    this.flushCheckpoint();
  }

  /** A due checkpoint waits for room like any record (after a pending drop notice). */
  private flushCheckpoint(): void {
    if (!this.checkpointDue || this.closed || this.drop !== null || this.buffer.length >= this.opts.maxBuffered) return;
    this.appendCheckpoint(false);
  }

  /** Put the drop notice into the stream as soon as there is room for it (or now, at close). */
  private flushDropNotice({ force = false } = {}): void {
    if (this.drop === null || (!force && this.buffer.length >= this.opts.maxBuffered)) return;
    const { count, first, last } = this.drop;
    this.drop = null;
    log.warn({ count }, 'audit records were dropped because the outer did not acknowledge in time');
    this.enqueue({ type: 'audit_dropped', ts: new Date().toISOString(), count, first_dropped_ts: first, last_dropped_ts: last });
  }

  private sendPending(): void {
    const s = this.channel.socket;
    if (!s) return;
    for (const p of this.buffer) {
      if (p.seq <= this.sentSeq) continue;
      s.write(p.frame);
      this.sentSeq = p.seq;
    }
  }

  private onAck(seq: number): void {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    const firstUnacked = this.buffer.findIndex((p) => p.seq > seq);
    this.buffer.splice(0, firstUnacked < 0 ? this.buffer.length : firstUnacked);
    this.flushDropNotice();
    this.flushCheckpoint();
    if (this.buffer.length === 0 && this.drop === null) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }

  private onConnected(socket: net.Socket): void {
    log.info({ address: formatAddress(this.opts.address), unacknowledged: this.buffer.length }, 'audit stream connected');
    this.sentSeq = this.ackedSeq;
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.type !== FrameType.AuditAck) continue;
          const ack = parseAuditAck(frame);
          if (ack.boot_id === this.bootId) this.onAck(ack.seq);
        }
      } catch (err) {
        log.warn({ err: messageOf(err) }, 'malformed frame from the audit collector; reconnecting');
        socket.destroy();
      }
    });
    socket.resume();
    this.sendPending();
  }
}
