/**
 * The pump in use by this process. The JS pump is the default; the native splice pump replaces it
 * when the addon loads (see native/), without any caller changing.
 */
import { jsPump } from './js-pump.js';
import type { Pump } from './types.js';

export type { Pump, PumpOptions, PumpResult, PumpSession, CloseCause, PumpEnd, PumpError } from './types.js';
export { jsPump } from './js-pump.js';

let active: Pump = jsPump;

export function activePump(): Pump {
  return active;
}

export function usePump(p: Pump): void {
  active = p;
}
