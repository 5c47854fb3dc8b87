/**
 * Bring `lo` up. A Nitro enclave boots with its loopback interface down (nothing in AWS init
 * raises it), so every 127.0.0.1 listener of the inner and the app would fail. The image has no
 * `ip` binary; the addon sets IFF_UP with the SIOCSIFFLAGS ioctl, which is all `ip link set lo up`
 * does for this. Without the addon the step fails loudly: the documented fallback is an image
 * whose entrypoint runs `ip link set lo up` (busybox) before the inner (docs/deploy-nitro.md).
 */
import { messageOf } from '../../shared/errors/index.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { BootstrapError } from './errors.js';

export const LOOPBACK = 'lo';

/** Returns whether `lo` was down before. Throws a BootstrapError when it cannot be brought up. */
export function bringLoopbackUp(): boolean {
  const addon = loadNativeAddon();
  if (!addon)
    throw new BootstrapError(
      'loopback',
      'the native addon is not loaded, so lo cannot be brought up (run `ip link set lo up` before the inner instead)',
    );
  let wasDown: boolean;
  try {
    wasDown = addon.interfaceUp(LOOPBACK);
  } catch (err) {
    throw new BootstrapError('loopback', `${messageOf(err)} (bringing lo up needs CAP_NET_ADMIN)`, err);
  }
  if (!addon.interfaceIsUp(LOOPBACK)) throw new BootstrapError('loopback', 'lo is still down after SIOCSIFFLAGS');
  return wasDown;
}
