/**
 * Receives the enclave's log lines on vsock://any:17001 and writes them to this process's stdout
 * as they came (the inner's lines are already JSON with `"side":"inner"`). Only the enclave's CID
 * may connect, one stream at a time (shared/wire/frame-server.ts). A malformed frame closes that
 * connection only.
 */
import { logger } from '../../shared/log/logger.js';
import type { Address } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { FrameType } from '../../shared/wire/frame.js';
import { serveEnclaveStream, type FrameServer } from '../../shared/wire/frame-server.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('logs');
/** Longest line passed on; the inner cuts longer ones, so this only stops a hostile sender. */
const MAX_LINE = 64 * 1024;

export interface LogCollectorOptions {
  /** The enclave's CID: the only peer accepted. */
  enclaveCid: number;
  /** vsock://any:17001 unless given (tests). */
  address?: Address;
  /** Where the lines go (stdout; tests substitute a collector). */
  out?: (text: string) => void;
}

export class LogCollector {
  private server: FrameServer | undefined;
  private readonly out: (text: string) => void;

  constructor(private readonly opts: LogCollectorOptions) {
    this.out = opts.out ?? ((t) => process.stdout.write(t));
  }

  async start(): Promise<void> {
    this.server = await serveEnclaveStream({
      what: 'log channel',
      address: this.opts.address ?? { kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Logs },
      log,
      enclaveCid: this.opts.enclaveCid,
      onFrame: (f) => {
        const lines = f.type === FrameType.Log ? f.payload.lines : undefined;
        if (!Array.isArray(lines)) {
          log.warn({ type: f.type }, 'unexpected frame on the log channel; ignored');
          return;
        }
        let text = '';
        for (const line of lines) {
          // One line in, one line out: embedded newlines would let the enclave forge records.
          if (typeof line === 'string') text += `${line.slice(0, MAX_LINE).replace(/[\r\n]/g, ' ')}\n`;
        }
        if (text) this.out(text);
      },
    });
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
