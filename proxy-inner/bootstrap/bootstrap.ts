/**
 * The inner as the enclave's entrypoint does what odyn does before any listener opens, and what
 * init does for the processes below it: lo up, the kernel RNG seeded from the NSM, PID-1 duties
 * (reap orphans, forward signals), and the clock kept in step with the parent's. Any step that
 * fails stops the inner with a message naming the step: an enclave half-prepared (no loopback, a
 * starved RNG) fails later in ways much harder to read.
 *
 * When: `bootstrap.mode: on`, or `auto` (the default) when this process is PID 1 or /dev/nsm
 * exists (inside a Nitro enclave). ENCLAVER_BOOTSTRAP=on|off decides for `auto`.
 */
import fs from 'node:fs';
import type { BootstrapConfig, InnerConfig } from '../../shared/config/types.js';
import { logger } from '../../shared/log/logger.js';
import { loadNativeAddon } from '../../shared/native/addon.js';
import { NSM_DEVICE_PATH } from '../nsm/device.js';
import { openNsm } from '../nsm/index.js';
import { ClockSync } from './clock-sync.js';
import { seedKernelRng } from './entropy.js';
import { BootstrapError } from './errors.js';
import { startInitDuties, type InitDuties } from './init-duties.js';
import { bringLoopbackUp } from './loopback.js';

export const ENV_BOOTSTRAP = 'ENCLAVER_BOOTSTRAP';
const log = logger('bootstrap');

export interface Bootstrapped {
  duties: InitDuties;
  clock: ClockSync | undefined;
  stop(): Promise<void>;
}

/** Whether the bootstrap runs, and why (for the log line). */
export function bootstrapDecision(
  mode: BootstrapConfig['mode'],
  env = process.env,
  pid = process.pid,
  nsmPresent = fs.existsSync(NSM_DEVICE_PATH),
): { run: boolean; why: string } {
  if (mode !== 'auto') return { run: mode === 'on', why: `bootstrap.mode: ${mode}` };
  const forced = env[ENV_BOOTSTRAP];
  if (forced === 'on' || forced === 'off') return { run: forced === 'on', why: `${ENV_BOOTSTRAP}=${forced}` };
  if (pid === 1) return { run: true, why: 'this process is PID 1' };
  if (nsmPresent) return { run: true, why: `${NSM_DEVICE_PATH} exists (inside a Nitro enclave)` };
  return { run: false, why: 'not PID 1 and no NSM device (not an enclave entrypoint)' };
}

/** Runs every step or throws the BootstrapError of the first that fails. */
export function runBootstrap(config: InnerConfig): Bootstrapped | undefined {
  const b = config.bootstrap;
  const decision = bootstrapDecision(b.mode);
  if (!decision.run) {
    log.debug({ why: decision.why }, 'bootstrap skipped');
    return undefined;
  }
  log.info({ why: decision.why }, 'bootstrapping the enclave');
  const wasDown = bringLoopbackUp();
  log.info({ was_down: wasDown }, 'loopback interface lo is up');
  const { nsm, simulator } = openNsm(config.nsm);
  const credited = seedKernelRng(nsm);
  log.info({ bytes: credited, source: simulator ? 'NSM SIMULATOR (not a real entropy source)' : 'NSM' }, 'kernel RNG seeded');
  const duties = startInitDuties(log, { isPid1: process.pid === 1 });
  let clock: ClockSync | undefined;
  if (b.clockSyncIntervalMs > 0) {
    const addon = loadNativeAddon();
    if (!addon) throw new BootstrapError('clock', 'the native addon is not loaded, so the clock cannot be set');
    clock = new ClockSync({
      intervalMs: b.clockSyncIntervalMs,
      maxStepMs: b.clockMaxStepMs,
      setClock: (ms) => addon.setRealtimeClock(ms),
      log,
    });
    clock.start();
    log.info({ interval_ms: b.clockSyncIntervalMs, max_step_ms: b.clockMaxStepMs }, 'clock kept in step with the parent (vsock 17006)');
  }
  return {
    duties,
    clock,
    async stop() {
      await clock?.stop();
      duties.stop();
    },
  };
}
