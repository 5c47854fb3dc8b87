/**
 * A SHA-384 running on its own thread: PCR0 and PCR2 both cover the app ramdisk (the bulk of an
 * EIF), so each runs on a thread of its own, off the main thread that reads the layers and writes
 * the EIF; with two cores the two passes and the I/O overlap. Messages: a batch (an ArrayBuffer
 * and how many of its bytes count, transferred) → the same buffer back, for reuse; 'digest' →
 * the digest bytes.
 */
import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type HashWorkerRequest = { kind: 'bytes'; buffer: ArrayBuffer; length: number } | { kind: 'digest' };
export type HashWorkerReply = { kind: 'done'; buffer: ArrayBuffer } | { kind: 'digest'; digest: Uint8Array };

const port = parentPort;
// Outside a worker thread (pcr.ts imports only its types) there is nothing to serve.
if (port) {
  const hash = crypto.createHash('sha384');
  port.on('message', (message: HashWorkerRequest) => {
    if (message.kind === 'digest') {
      const reply: HashWorkerReply = { kind: 'digest', digest: hash.digest() };
      port.postMessage(reply);
      return;
    }
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    const reply: HashWorkerReply = { kind: 'done', buffer: message.buffer };
    port.postMessage(reply, [message.buffer]);
  });
}
