/**
 * Real AF_VSOCK for `vsock://` addresses when emulation is off: the addon opens the sockets, and
 * they are wrapped into net.Socket / net.Server (shared/native/fd-socket.ts), so the rest of the
 * code cannot tell them from the emulated Unix sockets.
 */
import type net from 'node:net';
import { TransportError, errnoOf, messageOf } from '../errors/index.js';
import { loadNativeAddon, type NativeAddon } from '../native/addon.js';
import { serverFromFd, socketFromFd } from '../native/fd-socket.js';
import { type Address, formatAddress } from './address.js';

export type VsockAddress = Extract<Address, { kind: 'vsock' }>;

export interface VsockListenOptions {
  backlog: number;
  serverOptions: net.ServerOpts;
}

export interface VsockConnectOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

function addonOrThrow(op: 'listen' | 'connect', addr: VsockAddress): NativeAddon {
  const addon = loadNativeAddon();
  if (addon) return addon;
  throw new TransportError(
    op,
    formatAddress(addr),
    'real AF_VSOCK is not available in this build (it needs the native addon); set vsock emulation ' +
      '(config `vsock.emulation_dir` or ENCLAVER_VSOCK_EMULATION_DIR) for local runs',
    'EAFNOSUPPORT',
  );
}

export async function listenVsock(
  addr: VsockAddress,
  onConnection: (socket: net.Socket) => void,
  opts: VsockListenOptions,
): Promise<net.Server> {
  const addon = addonOrThrow('listen', addr);
  const display = formatAddress(addr);
  let fd: number;
  try {
    fd = addon.vsockListen(addr.cid, addr.port, opts.backlog);
  } catch (err) {
    throw new TransportError('listen', display, messageOf(err), errnoOf(err), err);
  }
  try {
    return await serverFromFd(fd, opts.serverOptions, onConnection, opts.backlog);
  } catch (err) {
    throw new TransportError('listen', display, messageOf(err), errnoOf(err), err);
  }
}

export function connectVsock(addr: VsockAddress, opts: VsockConnectOptions): Promise<net.Socket> {
  let addon: NativeAddon;
  try {
    addon = addonOrThrow('connect', addr);
  } catch (err) {
    return Promise.reject(err);
  }
  const display = formatAddress(addr);
  return new Promise((resolve, reject) => {
    let token: number | undefined;
    let settled = false;
    const finish = (outcome: { err: TransportError } | { socket: net.Socket }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if ('err' in outcome) reject(outcome.err);
      else resolve(outcome.socket);
    };
    const giveUp = (err: TransportError) => {
      if (token !== undefined) addon.vsockConnectCancel(token);
      finish({ err });
    };
    const onAbort = () => giveUp(new TransportError('connect', display, 'aborted', 'ECANCELED'));
    // The kernel enforces the same timeout (SO_VM_SOCKETS_CONNECT_TIMEOUT); this one also covers
    // a kernel that ignores it.
    const timer = setTimeout(
      () => giveUp(new TransportError('connect', display, `timed out after ${opts.timeoutMs} ms`, 'ETIMEDOUT')),
      opts.timeoutMs,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (err: unknown) => {
      const errno = errnoOf(err);
      // What a vsock peer that is not listening looks like, the same as under emulation.
      const message = errno === 'ECONNRESET' ? 'no peer is listening on this vsock port' : messageOf(err);
      finish({ err: new TransportError('connect', display, message, errno, err) });
    };
    try {
      token = addon.vsockConnect(addr.cid, addr.port, opts.timeoutMs, (err, fd) => {
        if (err || fd === undefined) {
          fail(err);
          return;
        }
        if (settled) {
          addon.closeFd(fd);
          return;
        }
        try {
          finish({ socket: socketFromFd(fd) });
        } catch (wrapErr) {
          addon.closeFd(fd);
          fail(wrapErr);
        }
      });
    } catch (err) {
      fail(err);
    }
  });
}
