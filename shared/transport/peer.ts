/**
 * Who is on the other end of an accepted pair-channel connection, so that the outer takes its
 * channels (status, logs, audit) only from the enclave it runs, and the inner its metrics requests
 * only from the parent (issue 9: another enclave on the same parent could write to them).
 *
 * Real AF_VSOCK: the peer's CID as the kernel reports it (getpeername through the addon), which a
 * peer cannot choose. Emulation: a Unix socket carries no CID, and Node cannot read the peer's
 * bound path; the boundary there is the pair's emulation directory (created 0700 by the local
 * runtime), so anything that can reach the socket is this pair.
 */
import type net from 'node:net';
import { messageOf } from '../errors/index.js';
import { loadNativeAddon } from '../native/addon.js';
import type { Address } from './address.js';
import { vsockSettings } from './vsock.js';

export type Peer = { kind: 'vsock'; cid: number } | { kind: 'emulated' } | { kind: 'unknown'; reason: string };

function fdOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** The peer of a connection accepted on `listenAddress`. */
export function peerOf(socket: net.Socket, listenAddress: Address): Peer {
  if (listenAddress.kind !== 'vsock' || vsockSettings().emulationDir !== undefined) return { kind: 'emulated' };
  const addon = loadNativeAddon();
  const fd = fdOf(socket);
  if (!addon || fd === undefined) return { kind: 'unknown', reason: 'no file descriptor or native addon to ask the kernel' };
  try {
    return { kind: 'vsock', cid: addon.vsockAddress(fd, true).cid };
  } catch (err) {
    return { kind: 'unknown', reason: messageOf(err) };
  }
}

/** Whether a peer may use a channel that belongs to `allowedCid`; emulated peers pass (see above). */
export function peerAllowed(peer: Peer, allowedCid: number): boolean {
  return peer.kind === 'emulated' || (peer.kind === 'vsock' && peer.cid === allowedCid);
}

export function describePeer(peer: Peer): string {
  switch (peer.kind) {
    case 'vsock':
      return `vsock CID ${peer.cid}`;
    case 'emulated':
      return 'emulated vsock';
    case 'unknown':
      return `unknown peer (${peer.reason})`;
  }
}
