/**
 * The outer end of the audit stream: accepts the inner's connection on vsock port 17003, writes
 * each line verbatim to its sinks (stdout, a rotating file, syslog) and acknowledges a record
 * only once every sink has it.
 *
 * Only the enclave's CID may connect (shared/wire/frame-server.ts), a stream carries one boot, and
 * a boot has one live stream: a second connection that names a boot whose stream is open is
 * refused, so it cannot slip records in beside the enclave's.
 * Duplicates (records sent again after a reconnect) are recognised per boot by their `seq` and
 * only acknowledged. After an outer restart the file's last line tells where the stream stood.
 */
import type net from 'node:net';
import { messageOf } from '../../shared/errors/index.js';
import { auditCollectorMetrics } from '../metrics.js';
import { logger } from '../../shared/log/logger.js';
import { auditLine, encodeAuditAck, parseAuditRecord, type AuditAck } from '../../shared/audit/stream.js';
import type { Address } from '../../shared/transport/index.js';
import { describePeer, type Peer } from '../../shared/transport/peer.js';
import { FrameError, FrameType } from '../../shared/wire/frame.js';
import { serveFrames, type FrameConnection, type FrameHandler, type FrameServer } from '../../shared/wire/frame-server.js';
import { RotatingFile, type RotatingFileOptions } from './file-sink.js';

const log = logger('audit-collector');

/** A destination for audit lines; a write that settles means the sink has them. */
export interface AuditSink {
  readonly name: string;
  /** Connect (for a remote sink); called by the collector's start. */
  start?(): void;
  /** Synchronous sinks return nothing (or throw); others resolve once the text is theirs. */
  write(text: string): Promise<void> | void;
  close(): Promise<void> | void;
}

export interface AuditCollectorOptions {
  /** vsock://any:17003 in production. */
  address: Address;
  /** The enclave's CID: the only peer accepted. */
  enclaveCid: number;
  stdout: boolean;
  file?: RotatingFileOptions;
  /** Further sinks (syslog); the collector closes them at stop. */
  sinks?: AuditSink[];
  /** Where stdout lines go; tests substitute a collector. */
  writeStdout?: (line: string) => void;
  /** Tests: decide the peer (the kernel is asked by default). */
  identify?: (socket: net.Socket) => Peer;
}

export class AuditCollector {
  private server: FrameServer | undefined;
  private file: RotatingFile | undefined;
  /** Highest seq written, per boot of the inner. */
  private readonly written = new Map<string, number>();
  private readonly syncSinks: AuditSink[] = [];
  /** Settles when every asynchronous sink has all lines handed to it so far (acks wait for it). */
  private delivered: Promise<void> = Promise.resolve();
  /** The open stream of each boot. */
  private readonly liveStreams = new Map<string, net.Socket>();
  /** Lines written since start (duplicates excluded). */
  linesWritten = 0;

  constructor(private readonly opts: AuditCollectorOptions) {
    const writeStdout =
      opts.writeStdout ??
      ((line) => {
        process.stdout.write(line);
      });
    if (opts.stdout) this.syncSinks.push({ name: 'stdout', write: writeStdout, close: () => {} });
  }

  async start(): Promise<void> {
    if (this.opts.file) {
      const file = new RotatingFile(this.opts.file);
      this.file = file;
      const r = file.resumeFrom;
      if (r) this.written.set(r.boot_id, r.seq);
      this.syncSinks.push({ name: 'file', write: (text) => file.write(text), close: () => file.close() });
    }
    for (const s of this.opts.sinks ?? []) s.start?.();
    this.server = await serveFrames({
      what: 'audit stream',
      address: this.opts.address,
      log,
      peerCid: this.opts.enclaveCid,
      exclusive: false,
      accept: (conn) => this.accept(conn),
      ...(this.opts.identify ? { identify: this.opts.identify } : {}),
    });
    log.info(
      {
        address: this.server.listening.bound,
        file: this.opts.file?.path,
        stdout: this.opts.stdout,
        sinks: this.opts.sinks?.map((s) => s.name),
      },
      'audit collector listening',
    );
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
    for (const s of this.syncSinks) await s.close();
    this.syncSinks.length = 0;
    for (const s of this.opts.sinks ?? []) await s.close();
    this.file = undefined;
  }

  private accept({ socket, peer }: FrameConnection): FrameHandler {
    let streamBoot: string | undefined;
    /** The first record names the stream's boot; a boot already streaming refuses a second. */
    const claim = (bootId: string): boolean => {
      const live = this.liveStreams.get(bootId);
      if (live && live !== socket) {
        log.warn({ peer: describePeer(peer), boot_id: bootId }, "audit stream: connection refused: this boot's stream is already open");
        socket.destroy();
        return false;
      }
      streamBoot = bootId;
      this.liveStreams.set(bootId, socket);
      return true;
    };
    return {
      ended: () => {
        if (streamBoot !== undefined && this.liveStreams.get(streamBoot) === socket) this.liveStreams.delete(streamBoot);
      },
      frames: (frames) => {
        // One write per read, not per record: a burst of attempts costs one syscall here.
        const lines: string[] = [];
        const advanced = new Map<string, number>();
        let ack: AuditAck | undefined;
        let received = 0;
        for (const frame of frames) {
          if (frame.type !== FrameType.AuditRecord) continue;
          const env = parseAuditRecord(frame);
          received += 1;
          if (streamBoot === undefined && !claim(env.boot_id)) return;
          if (env.boot_id !== streamBoot)
            throw new FrameError('frame_invalid', 'audit stream: a second boot_id on one stream', { boot_id: env.boot_id });
          const last = advanced.get(env.boot_id) ?? this.written.get(env.boot_id) ?? 0;
          if (env.seq > last) {
            lines.push(auditLine(env));
            advanced.set(env.boot_id, env.seq);
          }
          ack = { boot_id: env.boot_id, seq: Math.max(env.seq, last) };
        }
        auditCollectorMetrics.received(received);
        if (lines.length > 0) {
          try {
            this.deliver(lines.join(''));
            auditCollectorMetrics.written(lines.length);
          } catch (err) {
            auditCollectorMetrics.sinkError();
            // A sink that cannot write (disk full): no acknowledgement, so the inner keeps the records.
            log.error({ err: messageOf(err) }, 'audit stream failed; closing it so the inner keeps its records');
            socket.destroy();
            return;
          }
        }
        for (const [boot, seq] of advanced) this.written.set(boot, seq);
        this.linesWritten += lines.length;
        if (!ack) return;
        const frame = encodeAuditAck(ack);
        this.delivered.then(
          () => {
            if (socket.destroyed) return;
            socket.write(frame);
            auditCollectorMetrics.acknowledged(received);
          },
          () => auditCollectorMetrics.sinkError(),
        );
      },
    };
  }

  private deliver(text: string): void {
    // Synchronous sinks (the file) return nothing to wait for.
    for (const sink of this.syncSinks) void sink.write(text);
    const pending = (this.opts.sinks ?? []).map((s) => s.write(text)).filter((p): p is Promise<void> => p instanceof Promise);
    if (pending.length > 0) {
      const previous = this.delivered;
      this.delivered = Promise.all([previous, ...pending]).then(() => {});
    }
  }
}
