/**
 * What PID 1 owes the processes below it, done by the inner when it is the enclave's entrypoint:
 *
 * - Reap orphans. The app's grandchildren whose parent died are re-parented to PID 1 (us, in a
 *   container without init) or, once we are a child subreaper (inside Nitro, where AWS init is
 *   PID 1 and we are its child), to us. Nobody else waits for them, so they would stay zombies.
 *   Node only waits for the children it spawned itself (libuv's waitpid per pid), so the reaper
 *   waits for zombie children by pid and never for a pid Node spawned (`protect`): taking the
 *   app's exit status from libuv would lose the app's exit code.
 * - Forward signals. SIGTERM/SIGINT already stop the pair gracefully and reach the app through
 *   its supervisor; SIGHUP, SIGUSR2 and SIGWINCH go straight to the app's process group (as PID 1
 *   a signal without a handler is simply dropped by the kernel).
 */
import fs from 'node:fs';
import { messageOf } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/log/logger.js';
import { loadNativeAddon, type NativeAddon } from '../../shared/native/addon.js';
import { BootstrapError } from './errors.js';

export const FORWARDED_SIGNALS = ['SIGHUP', 'SIGUSR2', 'SIGWINCH'] as const;
/** A sweep also runs without SIGCHLD, in case one was coalesced with a signal we did not see. */
const SWEEP_MS = 1000;

/** Pids of our children that are zombies now (state Z in /proc/PID/stat, parent = us). */
export function zombieChildren(parent = process.pid): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' && Number(fields[1]) === parent) out.push(Number(name));
  }
  return out;
}

export interface InitDuties {
  /** A child Node spawned itself (the app): never reaped here, libuv waits for it. */
  protect(pid: number): void;
  /** Where forwarded signals go (the app's pid; its process group gets them). */
  forwardTo(pid: number | undefined): void;
  /** Orphans reaped so far. */
  reaped(): number;
  /** One reaping pass now (also runs on SIGCHLD and every second). */
  sweep(): void;
  stop(): void;
}

export function startInitDuties(log: Logger, opts: { isPid1: boolean }): InitDuties {
  const addon = loadNativeAddon();
  if (!addon) throw new BootstrapError('pid1', 'the native addon is not loaded, so orphans cannot be reaped');
  if (!opts.isPid1) {
    try {
      addon.setChildSubreaper();
    } catch (err) {
      throw new BootstrapError('pid1', `cannot become the child subreaper: ${messageOf(err)}`, err);
    }
  }
  const protectedPids = new Set<number>();
  let target: number | undefined;
  let reaped = 0;
  const sweep = () => {
    for (const pid of zombieChildren()) {
      if (protectedPids.has(pid)) continue;
      reaped += reapOne(addon, log, pid);
    }
  };
  const forward = (signal: NodeJS.Signals) => {
    if (target === undefined) return;
    log.info({ signal, pid: target }, 'forwarding signal to the app');
    try {
      process.kill(-target, signal);
    } catch {
      try {
        process.kill(target, signal);
      } catch {
        /* the app is gone */
      }
    }
  };
  process.on('SIGCHLD', sweep);
  for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  const timer = setInterval(sweep, SWEEP_MS);
  timer.unref();
  log.info(
    { pid1: opts.isPid1, subreaper: !opts.isPid1, forwarded: FORWARDED_SIGNALS },
    'init duties on: reaping orphans, forwarding signals',
  );
  return {
    protect: (pid) => {
      protectedPids.add(pid);
    },
    forwardTo: (pid) => {
      target = pid;
    },
    reaped: () => reaped,
    sweep,
    stop() {
      clearInterval(timer);
      process.off('SIGCHLD', sweep);
      for (const s of FORWARDED_SIGNALS) process.off(s, forward);
    },
  };
}

function reapOne(addon: NativeAddon, log: Logger, pid: number): number {
  try {
    const status = addon.reapChild(pid);
    if (!status) return 0;
    log.debug({ pid, ...status }, 'reaped an orphan');
    return 1;
  } catch {
    // ECHILD: someone else (libuv, for a child spawned a moment ago) waited for it first.
    return 0;
  }
}
