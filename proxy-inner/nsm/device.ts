/**
 * The real /dev/nsm, reached through the native addon's `nsmIoctl(fd, request, maxResponse)`
 * (ioctl NSM_IOCTL_RAW = 0xC0200A00). Node has no ioctl of its own, so without the addon the
 * device cannot be used and the caller falls back to the simulator, loudly.
 */
import fs from 'node:fs';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { NSM_MAX_RESPONSE_BYTES, NsmError } from './codec.js';
import type { NsmTransport } from './nsm.js';

export const NSM_DEVICE_PATH = '/dev/nsm';

export type NsmIoctl = (fd: number, request: Buffer, maxResponse: number) => Buffer;

/**
 * The addon's ioctl entry point (failures throw a NativeError named by errno), or null when the
 * addon is not built or is disabled with ENCLAVER_NATIVE=0.
 */
export function loadNsmIoctl(): NsmIoctl | null {
  const addon = loadNativeAddon();
  return addon ? (fd, request, maxResponse) => addon.nsmIoctl(fd, request, maxResponse) : null;
}

export class NsmDevice implements NsmTransport {
  readonly kind = 'device';
  private fd: number | null;

  constructor(
    private readonly ioctl: NsmIoctl,
    devicePath = NSM_DEVICE_PATH,
  ) {
    this.fd = fs.openSync(devicePath, 'r+');
  }

  exchange(request: Buffer): Buffer {
    if (this.fd === null) throw new NsmError('nsm_closed', 'the NSM device is closed');
    return this.ioctl(this.fd, request, NSM_MAX_RESPONSE_BYTES);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
