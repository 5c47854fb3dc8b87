/**
 * Listening and connecting on any address kind. Callers get plain `net.Socket`s and never ask
 * which transport is underneath.
 */
import fs from 'node:fs';
import net from 'node:net';
import { TransportError, errnoOf, messageOf } from '../errors/index.js';
import { type Address, formatAddress, formatHostPort } from './address.js';
import type { FastEndpoint, NativeAddon } from '../native/addon.js';
import { connectVsock, listenVsock, type VsockAddress } from './native-vsock.js';
import { emulatedPath, vsockSettings } from './vsock.js';
import { itemAt } from '../util/checked.js';

export { parseAddress, formatAddress, type Address } from './address.js';

/** Accept queue length asked of the kernel (which caps it at net.core.somaxconn). */
const DEFAULT_BACKLOG = 4096;

export interface ListenOptions {
  backlog?: number;
  /** Node's `server.maxConnections`: connections beyond it are closed at once and reported to `onDrop`. */
  maxConnections?: number;
  onDrop?: () => void;
}

export interface Listening {
  address: Address;
  /** What was actually bound (an ephemeral TCP port resolved, an emulation path). */
  bound: string;
  server: net.Server;
  /** Stop accepting; existing connections are not touched. Resolves once the listener is closed. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The address if it is vsock with emulation off: AF_VSOCK proper, opened by the native addon. */
function realVsock(addr: Address): VsockAddress | undefined {
  return addr.kind === 'vsock' && !vsockSettings().emulationDir ? addr : undefined;
}

/** Translate an address into what `net` can open (vsock under emulation: its Unix socket). */
function netTarget(addr: Address, emulationDir: string | undefined): { path: string } | { host: string; port: number } {
  switch (addr.kind) {
    case 'tcp':
      return { host: addr.host, port: addr.port };
    case 'unix':
      return { path: addr.path };
    case 'vsock':
      return { path: emulatedPath(emulationDir ?? '', addr.cid, addr.port, vsockSettings().localCid) };
  }
}

/** A Unix socket file left behind by a crashed process is removed; a live one is an error. */
async function clearStaleSocket(path: string, display: string): Promise<void> {
  if (!fs.existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new TransportError('listen', display, `another process is listening on ${path}`, 'EADDRINUSE');
  fs.rmSync(path, { force: true });
}

// pauseOnConnect: the bytes of a pass-through leg are for the pump, not for a JS 'data' handler.
const SERVER_OPTIONS: net.ServerOpts = { allowHalfOpen: true, pauseOnConnect: true, noDelay: true };

export async function listen(addr: Address, onConnection: (socket: net.Socket) => void, opts: ListenOptions = {}): Promise<Listening> {
  const display = formatAddress(addr);
  const vsock = realVsock(addr);
  if (vsock) {
    const server = await listenVsock(vsock, onConnection, { backlog: opts.backlog ?? DEFAULT_BACKLOG, serverOptions: SERVER_OPTIONS });
    return adoptServer(server, addr, display, opts, undefined);
  }
  const target = netTarget(addr, vsockSettings().emulationDir);
  if ('path' in target) await clearStaleSocket(target.path, display);
  const server = net.createServer(SERVER_OPTIONS, onConnection);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new TransportError('listen', display, messageOf(err), errnoOf(err), err));
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in target) server.listen({ path: target.path, backlog: opts.backlog ?? DEFAULT_BACKLOG }, done);
    else server.listen({ host: target.host, port: target.port, backlog: opts.backlog ?? DEFAULT_BACKLOG }, done);
  });
  return adoptServer(server, addr, display, opts, 'path' in target ? target.path : undefined);
}

/** The Listening record of a server that is already listening. */
function adoptServer(server: net.Server, addr: Address, display: string, opts: ListenOptions, socketPath: string | undefined): Listening {
  if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections;
  if (opts.onDrop) server.on('drop', opts.onDrop);
  // Accept errors (EMFILE, …) must never take the process down; they are per-attempt failures.
  server.on('error', () => {});
  const a = server.address();
  const bound = typeof a === 'string' ? a : a ? formatHostPort(a.address, a.port) : display;
  const boundAddress: Address = addr.kind === 'tcp' && a && typeof a !== 'string' ? { ...addr, port: a.port } : addr;
  return {
    address: boundAddress,
    bound,
    server,
    // Resolves once no new connection can arrive; connections already accepted are the caller's
    // (server.close's own callback would wait for every one of them to end).
    close: async () => {
      server.close();
      if (socketPath) fs.rmSync(socketPath, { force: true });
    },
  };
}

/** A Unix socket whose accept queue is full refuses at once with EAGAIN; it is worth waiting for. */
const BACKLOG_FULL_RETRY_MS = [2, 5, 10, 20, 50, 100];

function connectOnce(
  addr: Address,
  target: { path: string } | { host: string; port: number },
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<net.Socket> {
  const display = formatAddress(addr);
  const timeoutMs = Math.max(0, deadline - Date.now());
  return new Promise((resolve, reject) => {
    const socket =
      'path' in target
        ? net.connect({ path: target.path, allowHalfOpen: true })
        : net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    let settled = false;
    const fail = (err: TransportError) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new TransportError('connect', display, `timed out after ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs);
    const onAbort = () => fail(new TransportError('connect', display, 'aborted', 'ECANCELED'));
    const onError = (err: Error) => {
      const errno = errnoOf(err);
      // A missing emulation socket is what a vsock peer that is not listening looks like.
      const mapped = errno === 'ENOENT' && addr.kind === 'vsock' ? 'ECONNRESET' : errno;
      fail(
        new TransportError(
          'connect',
          display,
          errno === 'ENOENT' && addr.kind === 'vsock' ? 'no peer is listening on this vsock port' : messageOf(err),
          mapped,
          err,
        ),
      );
    };
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(socket);
    });
  });
}

export async function connect(addr: Address, opts: ConnectOptions): Promise<net.Socket> {
  const vsock = realVsock(addr);
  if (vsock) return connectVsock(vsock, opts);
  const target = netTarget(addr, vsockSettings().emulationDir);
  const deadline = Date.now() + opts.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce(addr, target, deadline, opts.signal);
    } catch (err) {
      // A burst of connections can fill a Unix listener's accept queue; TCP would queue the SYN
      // instead. Wait a little and try again until the connect timeout.
      const retryIn = itemAt(BACKLOG_FULL_RETRY_MS, Math.min(attempt, BACKLOG_FULL_RETRY_MS.length - 1), 'backlog retry delay');
      const full = err instanceof TransportError && err.errno === 'EAGAIN' && 'path' in target;
      if (!full || opts.signal?.aborted || Date.now() + retryIn >= deadline) throw err;
      await new Promise((r) => setTimeout(r, retryIn));
    }
  }
}

/** A listening socket for the native fast path: its fd (the fast path's from then on) and where it is. */
export interface NativeListening {
  fd: number;
  address: Address;
  bound: string;
  /** Removes the Unix socket file (the fd itself is closed by the fast path). */
  unlink(): void;
}

/**
 * Opens a listening socket for the native fast path, or says (undefined) that this address needs
 * Node's own listen (a TCP host name, which only Node resolves). Same errors as `listen`.
 */
export async function listenNative(addon: NativeAddon, addr: Address, backlog = DEFAULT_BACKLOG): Promise<NativeListening | undefined> {
  const display = formatAddress(addr);
  const asTransportError = (err: unknown) => new TransportError('listen', display, messageOf(err), errnoOf(err), err);
  if (addr.kind === 'tcp' && net.isIP(addr.host) === 0) return undefined;
  const vsock = realVsock(addr);
  try {
    if (vsock) {
      const fd = addon.vsockListen(vsock.cid, vsock.port, backlog);
      return { fd, address: addr, bound: display, unlink: () => {} };
    }
    const target = netTarget(addr, vsockSettings().emulationDir);
    if ('path' in target) {
      await clearStaleSocket(target.path, display);
      const fd = addon.fastBindUnix(target.path, backlog);
      return { fd, address: addr, bound: target.path, unlink: () => fs.rmSync(target.path, { force: true }) };
    }
    const { fd, port } = addon.fastBindTcp(target.host, target.port, backlog);
    const address: Address = addr.kind === 'tcp' ? { ...addr, port } : addr;
    return { fd, address, bound: formatHostPort(target.host, port), unlink: () => {} };
  } catch (err) {
    throw err instanceof TransportError ? err : asTransportError(err);
  }
}

/** Where the native fast path dials `addr`; undefined for a TCP host name (only Node resolves names). */
export function nativeEndpoint(addr: Address): FastEndpoint | undefined {
  if (realVsock(addr)) return addr.kind === 'vsock' ? { family: 'vsock', cid: addr.cid, port: addr.port } : undefined;
  const target = netTarget(addr, vsockSettings().emulationDir);
  if ('path' in target) return { family: 'unix', path: target.path };
  const family = net.isIP(target.host);
  if (family === 0) return undefined;
  return { family: family === 4 ? 'ipv4' : 'ipv6', address: target.host, port: target.port };
}
