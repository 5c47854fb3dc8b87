/**
 * Opening the NSM: the real device when the addon and /dev/nsm are both there (unless the config
 * asks for the simulator), the simulator otherwise. Using the simulator is always announced at
 * warn level, never silent, because its documents prove nothing.
 */
import fs from 'node:fs';
import { logger } from '../../shared/log/logger.js';
import { NSM_DEVICE_PATH, NsmDevice, loadNsmIoctl } from './device.js';
import { NsmError } from './codec.js';
import { Nsm } from './nsm.js';
import { NsmSimulator, type NsmSimulatorOptions } from './simulator.js';

const log = logger('nsm');

export interface OpenNsmOptions {
  /** `auto` uses the device when present; `simulator` always simulates; `device` fails without one. */
  mode: 'auto' | 'device' | 'simulator';
  simulator?: NsmSimulatorOptions;
  devicePath?: string;
}

export function openNsm(opts: OpenNsmOptions): { nsm: Nsm; simulator: NsmSimulator | null } {
  const devicePath = opts.devicePath ?? NSM_DEVICE_PATH;
  if (opts.mode !== 'simulator') {
    const ioctl = loadNsmIoctl();
    const present = fs.existsSync(devicePath);
    if (ioctl && present) {
      log.info({ device: devicePath }, 'using the Nitro Secure Module');
      return { nsm: new Nsm(new NsmDevice(ioctl, devicePath)), simulator: null };
    }
    const reason = !present ? `${devicePath} does not exist (not inside a Nitro enclave)` : 'the native addon with nsmIoctl is not built';
    if (opts.mode === 'device') throw new NsmError('nsm_unavailable', `NSM device requested but ${reason}`, { devicePath });
    log.warn({ reason }, `NSM SIMULATOR IN USE: ${reason}; attestation documents are signed by a throw-away CA and prove nothing`);
  } else {
    log.warn('NSM SIMULATOR IN USE (configured): attestation documents are signed by a throw-away CA and prove nothing');
  }
  const simulator = new NsmSimulator(opts.simulator);
  return { nsm: new Nsm(simulator), simulator };
}
