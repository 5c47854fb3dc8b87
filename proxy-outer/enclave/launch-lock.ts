/**
 * Enclave launches on one host are serialised: `nitro-cli run-enclave` fails when another
 * run-enclave is allocating at the same moment (both take CPUs and hugepages from one pool). The
 * lock is an flock on a file beside nitro-cli's own enclave sockets (/run/nitro_enclaves), so every
 * supervisor that can reach nitro-cli's state sees the same lock; flock goes with the process, so a
 * crashed launcher never leaves it held.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProxyError } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/log/logger.js';
import { loadNativeAddon } from '../../shared/native/addon.js';

export const ENV_LAUNCH_LOCK = 'ENCLAVER_LAUNCH_LOCK';
const NITRO_SOCKETS_DIR = '/run/nitro_enclaves';
const POLL_MS = 100;
/** A launch holding the lock longer than this is hung (a real one takes seconds). */
const GIVE_UP_MS = 10 * 60_000;

export function launchLockPath(): string {
  const configured = process.env[ENV_LAUNCH_LOCK];
  if (configured) return configured;
  const dir = fs.existsSync(NITRO_SOCKETS_DIR) ? NITRO_SOCKETS_DIR : os.tmpdir();
  return path.join(dir, 'enclaver-proxy-launch.lock');
}

/** Runs `launch` while holding the host's launch lock (waiting for it, bounded). */
export async function withLaunchLock<T>(log: Logger, launch: () => Promise<T>): Promise<T> {
  const addon = loadNativeAddon();
  if (!addon) {
    log.warn('enclave launches are not serialised on this host: the native addon (flock) is unavailable');
    return launch();
  }
  const lockPath = launchLockPath();
  const started = Date.now();
  let fd = addon.tryLockFile(lockPath);
  if (fd === null) log.info({ lock: lockPath }, 'another enclave launch is under way on this host; waiting for it');
  while (fd === null) {
    if (Date.now() - started > GIVE_UP_MS) {
      throw new ProxyError(
        'launch_lock_timeout',
        `another enclave launch has held ${lockPath} for ${GIVE_UP_MS / 60_000} minutes; is a nitro-cli run-enclave hung?`,
        { lock: lockPath },
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
    fd = addon.tryLockFile(lockPath);
  }
  try {
    return await launch();
  } finally {
    addon.closeFd(fd);
  }
}
