/**
 * Seed the kernel RNG from the NSM. An enclave has no hardware entropy source the kernel trusts at
 * boot; the Nitro Secure Module's GetRandom is one. Its bytes are mixed in and credited with
 * RNDADDENTROPY (writing to /dev/random would mix them without crediting). Under the NSM
 * simulator the bytes come from the parent's own RNG: fine for tests, and announced as such.
 */
import { messageOf } from '../../shared/errors/index.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import type { Nsm } from '../nsm/nsm.js';
import { BootstrapError } from './errors.js';

/** Feeds `rounds` GetRandom answers into the kernel; returns the bytes credited. */
export function seedKernelRng(nsm: Nsm, rounds = 2): number {
  const addon = loadNativeAddon();
  if (!addon) throw new BootstrapError('entropy', 'the native addon is not loaded, so the kernel RNG cannot be seeded');
  let credited = 0;
  for (let i = 0; i < rounds; i++) {
    let bytes: Buffer;
    try {
      bytes = nsm.getRandom();
    } catch (err) {
      throw new BootstrapError('entropy', `NSM GetRandom failed: ${messageOf(err)}`, err);
    }
    if (bytes.length === 0) throw new BootstrapError('entropy', 'NSM GetRandom returned no bytes');
    try {
      addon.addEntropy(bytes);
    } catch (err) {
      throw new BootstrapError('entropy', `${messageOf(err)} (RNDADDENTROPY needs CAP_SYS_ADMIN)`, err);
    }
    credited += bytes.length;
  }
  return credited;
}
