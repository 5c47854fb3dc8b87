/**
 * Where vsock addresses lead.
 *
 * On Nitro, `vsock://CID:PORT` is an AF_VSOCK socket opened by the native addon. For development,
 * tests and CI it is emulated by a Unix socket `<dir>/<cid>_<port>.sock` (the Firecracker
 * convention): emulation changes only the call that opens the socket, so every other line runs the
 * same way in tests and in production.
 */
import path from 'node:path';
import { VSOCK_CID_ANY, VSOCK_CID_PARENT } from './address.js';

export interface VsockSettings {
  /** Directory of emulated vsock endpoints; undefined means real AF_VSOCK. */
  emulationDir: string | undefined;
  /** This side's CID, used for emulated `vsock://any:PORT` listeners. */
  localCid: number;
}

export const ENV_EMULATION_DIR = 'ENCLAVER_VSOCK_EMULATION_DIR';
export const ENV_LOCAL_CID = 'ENCLAVER_VSOCK_CID';

/** The local CID set by the environment (the local pair sets it for its inner child). */
export function envLocalCid(): number | undefined {
  const v = process.env[ENV_LOCAL_CID];
  return v && /^[0-9]+$/.test(v) ? Number(v) : undefined;
}

let settings: VsockSettings = {
  emulationDir: process.env[ENV_EMULATION_DIR] || undefined,
  localCid: envLocalCid() ?? VSOCK_CID_PARENT,
};

export function configureVsock(next: Partial<VsockSettings>): void {
  settings = { ...settings, ...Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)) };
}

export function vsockSettings(): Readonly<VsockSettings> {
  return settings;
}

/** The Unix socket path that stands in for `vsock://cid:port` under emulation. */
export function emulatedPath(dir: string, cid: number, port: number, localCid: number): string {
  const effective = cid === VSOCK_CID_ANY ? localCid : cid;
  return path.join(dir, `${effective}_${port}.sock`);
}
