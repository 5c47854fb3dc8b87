/**
 * `role: local`: the whole pair on one machine for development, tests and the demo. The outer
 * runs in this process; the inner runs as a child process (as it would in its own enclave), and
 * vsock between them is emulated by Unix sockets in a runtime directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LocalConfig } from '../../shared/config/types.js';
import { messageOf } from '../../shared/errors/index.js';
import { logger } from '../../shared/log/logger.js';
import { onShutdownSignal } from '../../shared/runtime/signals.js';
import { DEFAULT_INNER_CID } from '../../shared/runtime/side-runtime.js';
import { ENV_EMULATION_DIR, ENV_LOCAL_CID } from '../../shared/transport/vsock.js';
import { startOuter, type OuterHandle } from '../main.js';
import { printBanner } from './banner.js';

const log = logger('local');
/** How long the inner may take to stop beyond its own app-stop and drain deadlines. */
const INNER_STOP_SLACK_MS = 5000;

export interface LocalOptions {
  /** This program and its arguments: the child re-runs them with `--local-inner` to become the inner. */
  script: string;
  argv: string[];
}

function startInner(config: LocalConfig, emulationDir: string, opts: LocalOptions): ChildProcess {
  const child = spawn(process.execPath, [opts.script, '--local-inner', ...opts.argv], {
    // stdin is the lifeline: if this process dies, the inner sees EOF and shuts down.
    stdio: ['pipe', 'inherit', 'inherit'],
    detached: true,
    env: {
      ...process.env,
      [ENV_EMULATION_DIR]: emulationDir,
      [ENV_LOCAL_CID]: String(config.inner.vsock.cid ?? DEFAULT_INNER_CID),
      ENCLAVER_SIDE: 'inner',
    },
  });
  log.info({ pid: child.pid }, 'inner proxy started (local enclave emulation)');
  return child;
}

export async function runLocal(config: LocalConfig, opts: LocalOptions): Promise<number> {
  const runtimeDir = config.runtimeDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-proxy-'));
  const ownsRuntimeDir = config.runtimeDir === undefined;
  const emulationDir = path.join(runtimeDir, 'vsock');
  fs.mkdirSync(emulationDir, { recursive: true, mode: 0o700 });
  printBanner(config);

  let outer: OuterHandle;
  try {
    outer = await startOuter({ ...config.outer, vsock: { ...config.outer.vsock, emulationDir } });
  } catch (err) {
    log.fatal({ err: messageOf(err) }, 'outer proxy could not start');
    if (ownsRuntimeDir) fs.rmSync(runtimeDir, { recursive: true, force: true });
    return 1;
  }
  const inner = startInner(config, emulationDir, opts);
  const innerExit = new Promise<number>((resolve) => {
    inner.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
    inner.once('error', (err) => {
      log.error({ err: err.message }, 'inner proxy failed to start');
      resolve(1);
    });
  });
  // Once: later statuses (the app starting to accept, say) are the outer's own 'enclave running' lines.
  const onFirstRunning = (s: { state: string }) => {
    if (s.state !== 'running') return;
    outer.status.off('status', onFirstRunning);
    log.info('local pair ready');
  };
  outer.status.on('status', onFirstRunning);

  const unhook = onShutdownSignal(() => {
    // Ingress closes first so no new work reaches an enclave that is stopping.
    void Promise.all(outer.runtime.listeners.map((l) => l.stopAccepting()));
    inner.kill('SIGTERM');
    const innerBudget = (config.inner.app?.stopTimeoutMs ?? 0) + config.inner.shutdown.drainTimeoutMs + INNER_STOP_SLACK_MS;
    setTimeout(() => {
      log.warn({ timeout_ms: innerBudget }, 'inner proxy did not stop in time; killing it');
      inner.kill('SIGKILL');
    }, innerBudget).unref();
  });
  const code = await innerExit;
  unhook();
  inner.stdin?.destroy();
  await outer.shutdown();
  if (ownsRuntimeDir) fs.rmSync(runtimeDir, { recursive: true, force: true });
  log.info({ exit_code: code }, 'local pair stopped');
  return code;
}
