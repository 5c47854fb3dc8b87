/**
 * Where vsock addresses lead.
 *
 * On Nitro, `vsock://CID:PORT` is an AF_VSOCK socket opened by the native addon. For development,
 * tests and CI it is emulated by a Unix socket `<dir>/<cid>_<port>.sock` (the Firecracker
 * convention): emulation changes only the call that opens the socket, so every other line runs the
 * same way in tests and in production.
 */
import path from 'node:path';
import { VSOCK_CID_ANY, VSOCK_CID_PARENT, type Address } from './address.js';

export interface VsockSettings {
  /** Directory of emulated vsock endpoints; undefined means real AF_VSOCK. */
  emulationDir: string | undefined;
  /** This side's CID, used for emulated `vsock://any:PORT` listeners. */
  localCid: number;
  /**
   * The CID the inner dials for the pair's channels: 3 on Nitro (the parent), 1 where both sides
   * share one kernel's loopback transport (the VM tests). Never hard-coded at a call site.
   */
  parentCid: number;
}

export const ENV_EMULATION_DIR = 'ENCLAVER_VSOCK_EMULATION_DIR';
export const ENV_LOCAL_CID = 'ENCLAVER_VSOCK_CID';
export const ENV_PARENT_CID = 'ENCLAVER_VSOCK_PARENT_CID';

function envCid(name: string): number | undefined {
  const v = process.env[name];
  return v && /^[0-9]+$/.test(v) ? Number(v) : undefined;
}

/** The local CID set by the environment (the local pair sets it for its inner child). */
export function envLocalCid(): number | undefined {
  return envCid(ENV_LOCAL_CID);
}

/** The parent CID set by the environment (for a config that does not say). */
export function envParentCid(): number | undefined {
  return envCid(ENV_PARENT_CID);
}

let settings: VsockSettings = {
  emulationDir: process.env[ENV_EMULATION_DIR] || undefined,
  localCid: envLocalCid() ?? VSOCK_CID_PARENT,
  parentCid: envParentCid() ?? VSOCK_CID_PARENT,
};

export function configureVsock(next: Partial<VsockSettings>): void {
  settings = { ...settings, ...Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)) };
}

export function vsockSettings(): Readonly<VsockSettings> {
  return settings;
}

/** Where the inner reaches the outer's channel on `port` (status, logs, egress, audit, IMDS). */
export function parentChannel(port: number): Extract<Address, { kind: 'vsock' }> {
  return { kind: 'vsock', cid: settings.parentCid, port };
}

/** The Unix socket path that stands in for `vsock://cid:port` under emulation. */
export function emulatedPath(dir: string, cid: number, port: number, localCid: number): string {
  const effective = cid === VSOCK_CID_ANY ? localCid : cid;
  return path.join(dir, `${effective}_${port}.sock`);
}
