/**
 * The pump in use by this process: the native splice pump when the addon loads (and
 * ENCLAVER_NATIVE is not 0), else the JS pump. Callers only ever see the Pump interface.
 */
import { loadNativeAddon, nativeAddonStatus } from '../native/addon.js';
import { jsPump } from './js-pump.js';
import { createNativePump } from './native-pump.js';
import type { Pump } from './types.js';

export type { Pump, PumpOptions, PumpPath, PumpResult, PumpSession, CloseCause, PumpEnd, PumpError } from './types.js';
export { jsPump } from './js-pump.js';
export { createNativePump } from './native-pump.js';

let active: Pump | undefined;

function selectPump(): Pump {
  const addon = loadNativeAddon();
  return addon ? createNativePump(addon) : jsPump;
}

export function activePump(): Pump {
  active ??= selectPump();
  return active;
}

export function usePump(p: Pump): void {
  active = p;
}

export interface PumpDescription {
  kind: Pump['kind'];
  /** One line for the startup log: which pump, and why. */
  summary: string;
}

/** What startup code logs once: which pump moves the bytes, and why that one. */
export function describePump(): PumpDescription {
  const pump = activePump();
  const status = nativeAddonStatus();
  if (pump.kind === 'native') {
    return { kind: 'native', summary: `native splice pump (${status.loaded ? status.path : 'addon'})` };
  }
  const why = status.loaded ? 'selected explicitly' : `native addon unavailable: ${status.detail}`;
  return { kind: 'js', summary: `JavaScript pump (${why})` };
}
