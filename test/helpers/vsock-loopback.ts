/**
 * Whether real AF_VSOCK can be tested here: only through the loopback transport (CID 1), never
 * against the VM host (CID 2) or a parent (CID 3). The probe is one connect to CID 1 with a short
 * timeout: a loopback transport answers at once (usually "connection reset": nobody listens on the
 * probe port); without one the connect fails or hangs.
 *
 * Inside the QEMU harness (test/vm/) ENCLAVER_REQUIRE_VSOCK=1 turns "unavailable" into a failure,
 * so a harness run can never pass by skipping everything.
 */
import { VSOCK_CID_LOCAL } from '../../shared/transport/address.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { errnoOf } from '../../shared/errors/index.js';

const PROBE_PORT = 0x7ffffff0;
export const ENV_REQUIRE_VSOCK = 'ENCLAVER_REQUIRE_VSOCK';
/** Short where vsock is optional (a kernel without loopback may leave the connect hanging); long in the slow guest. */
const PROBE_TIMEOUT_MS = process.env[ENV_REQUIRE_VSOCK] === '1' ? 10_000 : 500;

function probe(): Promise<string | false> {
  const addon = loadNativeAddon();
  if (!addon) return Promise.resolve('native addon unavailable, so no real AF_VSOCK');
  if (!addon.vsockSocketSupported()) return Promise.resolve('this kernel has no AF_VSOCK');
  return new Promise((resolve) => {
    let token: number | undefined;
    const timer = setTimeout(() => {
      if (token !== undefined) addon.vsockConnectCancel(token);
      resolve(`no vsock loopback transport on this kernel (connect to CID 1 did not answer within ${PROBE_TIMEOUT_MS} ms)`);
    }, PROBE_TIMEOUT_MS);
    try {
      token = addon.vsockConnect(VSOCK_CID_LOCAL, PROBE_PORT, PROBE_TIMEOUT_MS, (err, fd) => {
        clearTimeout(timer);
        if (fd !== undefined) addon.closeFd(fd);
        const code = err ? errnoOf(err) : undefined;
        if (!err || code === 'ECONNRESET' || code === 'ECONNREFUSED') resolve(false);
        else resolve(`no vsock loopback transport on this kernel (connect to CID 1: ${code})`);
      });
    } catch (err) {
      clearTimeout(timer);
      resolve(`no vsock loopback transport on this kernel (connect to CID 1: ${errnoOf(err)})`);
    }
  });
}

/** false when CID 1 answers; otherwise the reason to print with the skip. */
export async function vsockLoopbackUnavailable(): Promise<string | false> {
  const reason = await probe();
  if (reason && process.env[ENV_REQUIRE_VSOCK] === '1') throw new Error(`${ENV_REQUIRE_VSOCK}=1 but ${reason}`);
  return reason;
}
