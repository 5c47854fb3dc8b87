/**
 * How the native pump sizes its pipes and threads, from the kernel's pipe limits.
 *
 * Pipe capacity is charged to the user (`fs.pipe-user-pages-soft`, 16384 pages by default): past
 * the soft limit an unprivileged user's new pipes are cut to one page and F_SETPIPE_SZ is refused.
 * The pump therefore keeps all its pipes within a page budget and copies through a buffer when the
 * budget is spent, instead of silently degrading to one-page pipes.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { NativePumpSettings } from './addon.js';

export const ENV_PIPE_SIZE = 'ENCLAVER_PUMP_PIPE_SIZE';
export const ENV_THREADS = 'ENCLAVER_PUMP_THREADS';

/**
 * Chosen by measurement (benchmarks/, `--pipe-sizes`; see docs/decisions.md): on loopback, 256 KiB
 * pipes move a stream in few enough splice calls that larger pipes gain nothing, and it is what
 * HAProxy uses.
 */
export const DEFAULT_PIPE_SIZE = 256 * 1024;

const PAGE_SIZE = 4096;
/** Budget when the kernel sets no soft limit, or the process is exempt from it: 256 MiB of pipes. */
const UNLIMITED_BUDGET_PAGES = 65536;

export interface PipeLimits {
  /** /proc/sys/fs/pipe-max-size: the most an unprivileged F_SETPIPE_SZ may ask. */
  pipeMaxSize: number | null;
  /** /proc/sys/fs/pipe-user-pages-soft (0: no limit). */
  pipeUserPagesSoft: number | null;
  /** /proc/sys/fs/pipe-user-pages-hard (0: no limit). */
  pipeUserPagesHard: number | null;
  /** CAP_SYS_RESOURCE or CAP_SYS_ADMIN: the kernel exempts this process from the page limits. */
  exemptFromPipeLimits: boolean;
}

function readNumber(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

const CAP_SYS_ADMIN = 21n;
const CAP_SYS_RESOURCE = 24n;

function hasPipeLimitExemption(): boolean {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    if (!m) return false;
    const caps = BigInt(`0x${m[1]}`);
    return ((caps >> CAP_SYS_RESOURCE) & 1n) === 1n || ((caps >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return false;
  }
}

export function readPipeLimits(): PipeLimits {
  return {
    pipeMaxSize: readNumber('/proc/sys/fs/pipe-max-size'),
    pipeUserPagesSoft: readNumber('/proc/sys/fs/pipe-user-pages-soft'),
    pipeUserPagesHard: readNumber('/proc/sys/fs/pipe-user-pages-hard'),
    exemptFromPipeLimits: hasPipeLimitExemption(),
  };
}

function positiveInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 ? n : undefined;
}

/**
 * The settings the pump starts with. Environment overrides (for benchmarks and tuning):
 * ENCLAVER_PUMP_PIPE_SIZE (bytes), ENCLAVER_PUMP_THREADS.
 */
export function choosePumpSettings(limits: PipeLimits = readPipeLimits(), env: NodeJS.ProcessEnv = process.env): NativePumpSettings {
  let pipeSize = positiveInteger(env[ENV_PIPE_SIZE]) ?? DEFAULT_PIPE_SIZE;
  if (!limits.exemptFromPipeLimits && limits.pipeMaxSize && pipeSize > limits.pipeMaxSize) pipeSize = limits.pipeMaxSize;
  pipeSize = Math.max(PAGE_SIZE, Math.ceil(pipeSize / PAGE_SIZE) * PAGE_SIZE);

  // Unprivileged: half the user's soft limit, leaving room for the other side of a local pair and
  // for everything else the user runs. Exempt processes are bounded only by our own ceiling.
  const soft = limits.pipeUserPagesSoft ?? 0;
  const hard = limits.pipeUserPagesHard ?? 0;
  let pipeBudgetPages = UNLIMITED_BUDGET_PAGES;
  if (!limits.exemptFromPipeLimits) {
    if (soft > 0) pipeBudgetPages = Math.floor(soft / 2);
    if (hard > 0) pipeBudgetPages = Math.min(pipeBudgetPages, Math.floor(hard / 2));
  }

  // Half the cores by default: the other half runs Node's own thread, TLS and the peers.
  const threads = Math.min(64, positiveInteger(env[ENV_THREADS]) ?? Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / 2))));

  const pagesPerPipe = pipeSize / PAGE_SIZE;
  const maxIdlePipes = Math.max(0, Math.min(32, Math.floor(pipeBudgetPages / threads / pagesPerPipe / 4)));
  return { threads, pipeSize, pipeBudgetPages, maxIdlePipes };
}
