/**
 * Running the real CLI as a child process: collect its output, wait for log records, stop it,
 * and make sure nothing outlives the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI } from './paths.js';

export interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** JSON log records seen so far on stdout. */
  records: () => Record<string, unknown>[];
  waitFor: (pred: (r: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string) => Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ENCLAVER_LOG_FORMAT: 'json', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    waiters.forEach((w) => w());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      waiters.forEach((w) => w());
      resolve({ code, signal });
    });
  });
  const records = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    records,
    exited,
    waitFor(pred, timeoutMs = 15_000, what = 'log record') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = records().find(pred);
          if (hit) {
            done();
            resolve(hit);
            return true;
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`process exited before ${what}\nstdout:\n${out}\nstderr:\n${err}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const waiter = () => {
          check();
        };
        const done = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
        };
        waiters.push(waiter);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** Run the CLI to completion (for --check, --help, bad configs). */
export async function runCliToEnd(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = runCli(args, opts);
  // 'close', not 'exit': output can still be on its way when the process has exited.
  const closed = new Promise<void>((resolve) => p.child.once('close', () => resolve()));
  const { code } = await p.exited;
  await closed;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

export function tempDir(prefix = 'ep-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeConfig(dir: string, name: string, yamlText: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, yamlText);
  return file;
}
