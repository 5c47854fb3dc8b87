/**
 * The outer end of the audit stream: accepts the inner's connection on vsock port 17003, writes
 * each record as one JSON line to stdout and/or a rotating file, and acknowledges what it wrote.
 *
 * Duplicates (records sent again after a reconnect) are recognised per boot by their `seq` and
 * only acknowledged. After an outer restart the file's last line tells where the stream stood.
 */
import type net from 'node:net';
import { messageOf } from '../../shared/errors/index.js';
import { auditCollectorMetrics } from '../metrics.js';
import { logger } from '../../shared/log/logger.js';
import { auditLine, encodeAuditAck, parseAuditRecord } from '../../shared/audit/stream.js';
import { listen, type Address, type Listening } from '../../shared/transport/index.js';
import { FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import { RotatingFile, type RotatingFileOptions } from './file-sink.js';

const log = logger('audit-collector');

export interface AuditCollectorOptions {
  /** vsock://any:17003 in production. */
  address: Address;
  stdout: boolean;
  file?: RotatingFileOptions;
  /** Where stdout lines go; tests substitute a collector. */
  writeStdout?: (line: string) => void;
}

export class AuditCollector {
  private listening: Listening | undefined;
  private file: RotatingFile | undefined;
  /** Highest seq written, per boot of the inner. */
  private readonly written = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  private readonly writeStdout: (line: string) => void;
  /** Lines written since start (duplicates excluded). */
  linesWritten = 0;

  constructor(private readonly opts: AuditCollectorOptions) {
    this.writeStdout = opts.writeStdout ?? ((line) => { process.stdout.write(line); });
  }

  async start(): Promise<void> {
    if (this.opts.file) {
      this.file = new RotatingFile(this.opts.file);
      const r = this.file.resumeFrom;
      if (r) this.written.set(r.boot_id, r.seq);
    }
    this.listening = await listen(this.opts.address, (s) => this.accept(s));
    log.info({ address: this.listening.bound, file: this.opts.file?.path, stdout: this.opts.stdout }, 'audit collector listening');
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.listening?.close();
    this.listening = undefined;
    this.file?.close();
    this.file = undefined;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      // One write per chunk, not per record: a burst of attempts costs one syscall here.
      const lines: string[] = [];
      const advanced = new Map<string, number>();
      let ack: { boot_id: string; seq: number } | undefined;
      let received = 0;
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.type !== FrameType.AuditRecord) continue;
          const env = parseAuditRecord(frame);
          received += 1;
          const last = advanced.get(env.boot_id) ?? this.written.get(env.boot_id) ?? 0;
          if (env.seq > last) {
            lines.push(auditLine(env));
            advanced.set(env.boot_id, env.seq);
          }
          ack = { boot_id: env.boot_id, seq: Math.max(env.seq, last) };
        }
        if (lines.length > 0) {
          const text = lines.join('');
          if (this.opts.stdout) this.writeStdout(text);
          this.file?.write(text);
        }
      } catch (err) {
        // A malformed stream, or a file that cannot be written: stop acknowledging so that the
        // inner keeps the records, and let it reconnect.
        auditCollectorMetrics.received(received);
        auditCollectorMetrics.sinkError();
        log.error({ err: messageOf(err) }, 'audit stream failed; closing it so the inner keeps its records');
        socket.destroy();
        return;
      }
      for (const [boot, seq] of advanced) this.written.set(boot, seq);
      this.linesWritten += lines.length;
      auditCollectorMetrics.received(received);
      auditCollectorMetrics.written(lines.length);
      // One ack covers every record of the chunk: all of them are written now, or were before.
      auditCollectorMetrics.acknowledged(received);
      if (ack) socket.write(encodeAuditAck(ack));
    });
    socket.resume();
  }
}
