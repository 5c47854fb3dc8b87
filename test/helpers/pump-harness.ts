/**
 * A client → front → pump → server chain on loopback TCP, for testing any Pump.
 *
 * The front listener accepts the client's connection, connects to the server and hands both
 * sockets to the pump under test; `open()` returns the three things a test looks at: the client
 * socket, the server's accepted socket and the pump session. Connections are matched by port, so
 * many can be opened concurrently.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import type { Pump, PumpOptions, PumpSession } from '../../shared/pump/index.js';

export interface OpenedPair {
  client: net.Socket;
  server: net.Socket;
  session: PumpSession;
}

export interface PairHarness {
  /** `firstWrite`: bytes the client sends as soon as it is connected, before the pump starts. */
  open(opts?: { firstWrite?: Buffer }): Promise<OpenedPair>;
  close(): Promise<void>;
}

export interface PairOptions {
  /** Runs on the front socket pair before the pump takes it; returns the pump options to use. */
  prepare?: (downstream: net.Socket, upstream: net.Socket) => PumpOptions | Promise<PumpOptions>;
}

/** A map whose readers can wait for a key that has not been set yet. */
class Rendezvous<K, V> {
  private values = new Map<K, V>();
  private waiters = new Map<K, (v: V) => void>();

  put(key: K, value: V): void {
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      waiter(value);
    } else {
      this.values.set(key, value);
    }
  }

  take(key: K): Promise<V> {
    const value = this.values.get(key);
    if (value !== undefined) {
      this.values.delete(key);
      return Promise.resolve(value);
    }
    return new Promise((resolve) => this.waiters.set(key, resolve));
  }
}

function listenLoopback(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

export async function startPair(pump: Pump, options: PairOptions = {}): Promise<PairHarness> {
  const serverSockets = new Rendezvous<number, net.Socket>();
  // Every socket the harness made or accepted, so close() can end whatever a test left open.
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const sessions = new Rendezvous<number, { session: PumpSession; upstreamPort: number }>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    track(s);
    s.on('error', () => {});
    serverSockets.put(s.remotePort!, s);
  });
  const serverPort = await listenLoopback(server);
  const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    track(down);
    down.on('error', () => {});
    const clientPort = down.remotePort!;
    const up = net.connect({ host: '127.0.0.1', port: serverPort, allowHalfOpen: true });
    track(up);
    up.on('error', () => {});
    up.once('connect', () => {
      const upstreamPort = up.localPort!;
      void Promise.resolve(options.prepare ? options.prepare(down, up) : {}).then((opts) => {
        sessions.put(clientPort, { session: pump.run(down, up, opts), upstreamPort });
      });
    });
  });
  const frontPort = await listenLoopback(front);
  return {
    async open({ firstWrite } = {}) {
      const client = net.connect({ host: '127.0.0.1', port: frontPort, allowHalfOpen: true });
      track(client);
      client.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
      });
      if (firstWrite) client.write(firstWrite);
      const { session, upstreamPort } = await sessions.take(client.localPort!);
      const serverSocket = await serverSockets.take(upstreamPort);
      return { client, server: serverSocket, session };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => server.close(() => r())), new Promise<void>((r) => front.close(() => r()))]);
    },
  };
}

/** Deterministic, position-dependent bytes: every 1 MiB block carries its index and the seed. */
export function* pattern(size: number, seed: number, chunk = 1 << 20): Generator<Buffer> {
  const base = crypto.createHash('sha512').update(`seed-${seed}`).digest();
  const block = Buffer.alloc(Math.min(chunk, Math.max(size, 1)));
  for (let i = 0; i < block.length; i++) block[i] = base[i % base.length]! ^ (i >> 6);
  let index = 0;
  for (let sent = 0; sent < size; sent += chunk, index++) {
    const b = Buffer.from(block.subarray(0, Math.min(chunk, size - sent)));
    if (b.length >= 8) {
      b.writeUInt32BE(index, 0);
      b.writeUInt32BE(seed, 4);
    }
    yield b;
  }
}

export function sha256Of(size: number, seed: number): string {
  const h = crypto.createHash('sha256');
  for (const b of pattern(size, seed)) h.update(b);
  return h.digest('hex');
}

/** Writes the pattern with backpressure; ends the socket afterwards unless told not to. */
export async function send(socket: net.Socket, size: number, seed: number, { end = true } = {}): Promise<void> {
  for (const b of pattern(size, seed)) {
    if (!socket.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const onClose = () => reject(new Error('socket closed while sending'));
        socket.once('drain', () => {
          socket.off('close', onClose);
          resolve();
        });
        socket.once('close', onClose);
      });
    }
  }
  if (end) socket.end();
}

export interface Received {
  bytes: number;
  sha256: string;
  /** How the stream ended: a clean FIN, or an error code such as ECONNRESET. */
  ending: 'end' | string;
}

/** Reads until the peer's FIN (or an error / close), hashing everything. */
export function receive(socket: net.Socket): Promise<Received> {
  return new Promise((resolve) => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    let settled = false;
    const finish = (ending: string) => {
      if (settled) return;
      settled = true;
      resolve({ bytes, sha256: h.digest('hex'), ending });
    };
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    socket.once('end', () => finish('end'));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'error'));
    socket.once('close', () => finish('close'));
    socket.resume();
  });
}

export function closed(socket: net.Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}
