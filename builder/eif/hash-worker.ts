/**
 * A SHA-384 running on its own thread: PCR0 and PCR2 both cover the app ramdisk (the bulk of an
 * EIF), so one of them is computed here while the main thread does the other, and hashing costs
 * the time of one pass, not two, when a second core is free. Messages: a chunk (ArrayBuffer,
 * transferred) → 'ack'; 'digest' → the digest bytes.
 */
import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const port = parentPort;
if (!port) throw new Error('builder/eif/hash-worker.js runs as a worker thread (new Worker), not as a program');
const hash = crypto.createHash('sha384');
port.on('message', (message: ArrayBuffer | 'digest') => {
  if (message === 'digest') {
    port.postMessage(hash.digest());
    return;
  }
  hash.update(new Uint8Array(message));
  port.postMessage('ack');
});
