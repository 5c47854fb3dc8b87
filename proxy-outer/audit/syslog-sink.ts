/**
 * Audit lines forwarded to a syslog server, so they reach a SIEM: RFC 5424 messages over TCP with
 * octet-counting framing (RFC 6587 §3.4.1: `LEN SP MSG`, so a line can never be split or merged),
 * optionally over TLS (RFC 5425, which uses the same framing).
 *
 * A batch counts as delivered once it is written to a connected socket; while the server is away
 * batches wait, and the collector withholds the inner's acknowledgement until then, so the inner
 * keeps the records (and drops and counts them if the outage outlasts its buffer). Batches
 * written to a connection that then breaks are sent again on the next one: at-least-once. Plain
 * syslog has no application acknowledgement, so bytes in the kernel's buffers when the server
 * dies can be lost; the file sink is the complete copy.
 */
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { messageOf, TransportError } from '../../shared/errors/index.js';
import { SYSLOG_FACILITIES, type SyslogFacility, type SyslogTransport } from '../../shared/audit/syslog.js';
import { logger } from '../../shared/log/logger.js';
import { formatAddress, type Address } from '../../shared/transport/index.js';
import { Redialer } from '../../shared/transport/redial.js';
import type { AuditSink } from './collector.js';

const log = logger('audit-syslog');

/** Severity "informational": an audit record is not an alert by itself. */
const SEVERITY_INFO = 6;

export interface SyslogSinkOptions {
  address: Extract<Address, { kind: 'tcp' }>;
  transport: SyslogTransport;
  facility: SyslogFacility;
  appName: string;
  hostname?: string;
}

interface Batch {
  data: Buffer;
  delivered: () => void;
}

/** One RFC 5424 message, octet-counted: `LEN <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`. */
export function syslogFrame(line: string, opts: { pri: number; hostname: string; appName: string; procId: number; ts: Date }): Buffer {
  const msg = Buffer.from(
    `<${opts.pri}>1 ${opts.ts.toISOString()} ${opts.hostname} ${opts.appName} ${opts.procId} audit - ${line}`,
    'utf8',
  );
  return Buffer.concat([Buffer.from(`${msg.length} `, 'ascii'), msg]);
}

function dialTls(opts: SyslogSinkOptions, transport: Extract<SyslogTransport, { kind: 'tls' }>, timeoutMs: number): Promise<net.Socket> {
  const display = formatAddress(opts.address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: opts.address.host,
      port: opts.address.port,
      servername: transport.serverName ?? (net.isIP(opts.address.host) ? undefined : opts.address.host),
      ...(transport.ca ? { ca: transport.ca } : {}),
    });
    const timer = setTimeout(
      () => fail(new TransportError('connect', display, `TLS handshake timed out after ${timeoutMs} ms`, 'ETIMEDOUT')),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

export class SyslogSink implements AuditSink {
  readonly name = 'syslog';
  private readonly waiting: Batch[] = [];
  /** Written to the current connection; sent again if it breaks before the write completes. */
  private readonly inFlight = new Set<Batch>();
  private readonly channel: Redialer;
  private readonly header: { pri: number; hostname: string; appName: string; procId: number };

  constructor(private readonly opts: SyslogSinkOptions) {
    this.header = {
      pri: SYSLOG_FACILITIES[opts.facility] * 8 + SEVERITY_INFO,
      hostname: opts.hostname ?? (os.hostname() || '-'),
      appName: opts.appName,
      procId: process.pid,
    };
    const transport = opts.transport;
    this.channel = new Redialer({
      address: opts.address,
      what: 'syslog server',
      log,
      retryMinMs: 100,
      retryMaxMs: 5000,
      ...(transport.kind === 'tls' ? { dial: (timeoutMs: number) => dialTls(opts, transport, timeoutMs) } : {}),
      onConnected: (socket) => {
        log.info(
          { address: formatAddress(opts.address), tls: transport.kind === 'tls', waiting: this.waiting.length },
          'syslog server connected',
        );
        socket.on('data', () => {});
        socket.resume();
        this.send();
      },
      onLost: () => {
        // Unconfirmed writes go first on the next connection, in their order.
        this.waiting.unshift(...this.inFlight);
        this.inFlight.clear();
        log.warn({ waiting: this.waiting.length }, 'syslog server connection lost; audit acknowledgements wait until it is back');
      },
    });
  }

  start(): void {
    this.channel.start();
  }

  /** Resolves once the lines are written to a connection to the server. */
  write(text: string): Promise<void> {
    const ts = new Date();
    const frames = text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((line) => syslogFrame(line, { ...this.header, ts }));
    return new Promise((delivered) => {
      this.waiting.push({ data: Buffer.concat(frames), delivered });
      this.send();
    });
  }

  async close(): Promise<void> {
    await this.channel.close(1000);
    if (this.waiting.length + this.inFlight.size > 0)
      log.warn({ batches: this.waiting.length + this.inFlight.size }, 'audit lines not delivered to syslog at shutdown');
  }

  private send(): void {
    const socket = this.channel.socket;
    if (!socket || socket.destroyed) return;
    for (let batch = this.waiting.shift(); batch !== undefined; batch = this.waiting.shift()) {
      this.inFlight.add(batch);
      socket.write(batch.data, (err) => {
        if (err) {
          log.debug({ err: messageOf(err) }, 'syslog write failed; the batch is sent again after reconnecting');
          return;
        }
        if (this.inFlight.delete(batch)) batch.delivered();
      });
    }
  }
}
