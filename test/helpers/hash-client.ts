/**
 * Client side of test/fixtures/apps/hash-app.mjs: sends `up` pseudo-random bytes, asks for `down`
 * bytes back, half-closes, and checks every byte both ways by SHA-256 at both ends.
 */
import crypto from 'node:crypto';
import net from 'node:net';

export function pseudoRandom(seed: bigint): crypto.Cipher {
  const key = Buffer.alloc(16);
  key.writeBigUInt64BE(seed);
  return crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
}

export interface TransferResult {
  /** The app's SHA-256 of what it received equals ours of what we sent. */
  upIntact: boolean;
  /** What we received equals what the app generated. */
  downIntact: boolean;
  bytesReceived: number;
}

export interface TransferOptions {
  up: number;
  down: number;
  seed?: bigint;
  /** Write chunk size (smaller = more, smaller writes). */
  chunk?: number;
  /** Called once the header is sent and the connection is established. */
  onConnected?: (socket: net.Socket) => void;
  /** Pause between chunks (ms) to keep a connection open for a while. */
  paceMs?: number;
}

export function transfer(port: number, opts: TransferOptions): Promise<TransferResult> {
  const seedUp = opts.seed ?? 1n;
  const seedDown = seedUp + 1000n;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const sentHash = crypto.createHash('sha256');
    const gotHash = crypto.createHash('sha256');
    const expectHash = crypto.createHash('sha256');
    const expectGen = pseudoRandom(seedDown);
    let received = 0;
    let digest = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () => {
      const header = Buffer.alloc(16);
      header.writeBigUInt64BE(BigInt(opts.down), 0);
      header.writeBigUInt64BE(seedDown, 8);
      socket.write(header);
      opts.onConnected?.(socket);
      const gen = pseudoRandom(seedUp);
      const chunk = opts.chunk ?? 256 * 1024;
      const zeros = Buffer.alloc(chunk);
      let left = opts.up;
      const write = () => {
        while (left > 0) {
          const n = Math.min(left, chunk);
          left -= n;
          const data = gen.update(zeros.subarray(0, n));
          sentHash.update(data);
          const ok = socket.write(data);
          if (opts.paceMs) {
            setTimeout(write, opts.paceMs);
            return;
          }
          if (!ok) {
            socket.once('drain', write);
            return;
          }
        }
        socket.end();
      };
      write();
    });
    socket.on('data', (d: Buffer) => {
      const dataPart = Math.max(0, Math.min(d.length, opts.down - received));
      if (dataPart > 0) {
        const part = d.subarray(0, dataPart);
        gotHash.update(part);
        expectHash.update(expectGen.update(Buffer.alloc(dataPart)));
      }
      if (dataPart < d.length) digest = Buffer.concat([digest, d.subarray(dataPart)]);
      received += d.length;
    });
    socket.on('end', () => {
      socket.destroy();
      resolve({
        upIntact: digest.length === 32 && digest.equals(sentHash.digest()),
        downIntact: received === opts.down + 32 && gotHash.digest().equals(expectHash.digest()),
        bytesReceived: received,
      });
    });
  });
}
