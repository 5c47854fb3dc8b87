/**
 * The pumps every pump test runs against: the JS pump, the native splice pump, and the native pump
 * forced onto its read/write copy path. Without the addon the native variants are skipped with the
 * reason printed (the addon failed to build or load).
 */
import { loadNativeAddon, nativeAddonStatus } from '../../shared/native/addon.js';
import { createNativePump, jsPump, type Pump } from '../../shared/pump/index.js';
import type { PumpPath } from '../../shared/pump/types.js';

export interface PumpUnderTest {
  name: string;
  pump: Pump | undefined;
  /** Set when this variant cannot run here: the reason, for node:test's skip. */
  skip: string | false;
  /** How this variant reports having moved bytes (PumpResult.path). */
  path: PumpPath;
}

export function pumpsUnderTest(): PumpUnderTest[] {
  const addon = loadNativeAddon();
  const status = nativeAddonStatus();
  const missing = status.loaded ? false : `native addon unavailable (${status.reason}: ${status.detail})`;
  if (missing) console.log(`# skipping native pump variants: ${missing}`);
  return [
    { name: 'js', pump: jsPump, skip: false, path: 'js' },
    { name: 'native (splice)', pump: addon ? createNativePump(addon) : undefined, skip: missing, path: 'splice' },
    { name: 'native (copy fallback)', pump: addon ? createNativePump(addon, { splice: false }) : undefined, skip: missing, path: 'copy' },
  ];
}
