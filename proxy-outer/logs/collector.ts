/**
 * Receives the enclave's log lines on vsock://any:17001 and writes them to this process's stdout
 * as they came (the inner's lines are already JSON with `"side":"inner"`). A malformed frame
 * closes that connection only.
 */
import { logger } from '../../shared/log/logger.js';
import { listen, type Listening } from '../../shared/transport/index.js';
import { VSOCK_CID_ANY } from '../../shared/transport/address.js';
import { FrameDecoder, FrameType } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

const log = logger('logs');
/** Longest line passed on; the inner cuts longer ones, so this only stops a hostile sender. */
const MAX_LINE = 64 * 1024;

export class LogCollector {
  private listening: Listening | undefined;

  constructor(private readonly out: (text: string) => void = (t) => process.stdout.write(t)) {}

  async start(): Promise<void> {
    this.listening = await listen({ kind: 'vsock', cid: VSOCK_CID_ANY, port: PairPort.Logs }, (socket) => {
      const decoder = new FrameDecoder();
      socket.on('error', () => {});
      socket.on('end', () => socket.end());
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const f of decoder.push(chunk)) {
            const lines = f.type === FrameType.Log ? f.payload.lines : undefined;
            if (!Array.isArray(lines)) {
              log.warn({ type: f.type }, 'unexpected frame on the log channel; ignored');
              continue;
            }
            let text = '';
            for (const line of lines) {
              // One line in, one line out: embedded newlines would let the enclave forge records.
              if (typeof line === 'string') text += `${line.slice(0, MAX_LINE).replace(/[\r\n]/g, ' ')}\n`;
            }
            if (text) this.out(text);
          }
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'malformed frame on the log channel; closing it');
          socket.destroy();
        }
      });
      socket.resume();
    });
  }

  async close(): Promise<void> {
    await this.listening?.close();
  }
}
