/**
 * Starts the app, forwards stop signals to it, and reports how it ended.
 *
 * The app gets its own process group (it is a session leader), so a terminal's Ctrl-C reaches the
 * inner only and the inner decides what the app receives; stopping signals the whole group, so
 * helpers the app forked do not outlive it. Node reaps the direct child itself.
 *
 * An inner that dies without stopping the app (SIGKILL, a crash) must not leave it running on its
 * port. Beside the app runs a guard, `sh -c 'cat >/dev/null; kill -s KILL -- -PGID'`, whose stdin is a
 * pipe from this process: whenever this process ends, however it ends, the kernel closes the pipe,
 * `cat` returns and the guard kills the app's whole group, forks included. Chosen over
 * PR_SET_PDEATHSIG (Node cannot run code between fork and exec, so that needs an exec shim such as
 * `setpriv`, which kills the app but not what it forked) and over a parent-side kill (a dead parent
 * kills nothing). The guard costs a shell and a `cat`, has its own session (a terminal's Ctrl-C does
 * not stop it) and exits with the group. Not started when this process is PID 1 (in a Nitro
 * enclave, or a container): then its death ends everything anyway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ProxyError } from '../../shared/errors/index.js';
import type { AppConfig } from '../../shared/config/types.js';
import { logger, writeAppOutput } from '../../shared/log/logger.js';
import { LineSplitter } from '../../shared/util/line-splitter.js';

const log = logger('app');

export interface AppExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class AppStartError extends ProxyError {
  /** The exit code a shell would give: 127 not found, 126 not executable. */
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, context: Record<string, unknown>) {
    super(code, message, context);
    this.exitCode = exitCode;
  }
}

/** Resolve the program like execvp would, so a missing binary is reported before anything starts. */
export function resolveProgram(program: string, cwd: string, envPath: string | undefined): string {
  const check = (candidate: string): string | undefined => {
    try {
      const st = fs.statSync(candidate);
      if (!st.isFile()) return undefined;
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') {
        throw new AppStartError('app_not_executable', `app command "${program}" is not executable (${candidate})`, 126, {
          program,
          path: candidate,
        });
      }
      return undefined;
    }
  };
  if (program.includes('/')) {
    const full = path.resolve(cwd, program);
    const found = check(full);
    if (!found)
      throw new AppStartError('app_not_found', `app command "${program}" not found (${full} does not exist)`, 127, { program, path: full });
    return found;
  }
  for (const dir of (envPath ?? '').split(':').filter(Boolean)) {
    const found = check(path.join(dir, program));
    if (found) return found;
  }
  throw new AppStartError('app_not_found', `app command "${program}" not found on PATH`, 127, { program, PATH: envPath });
}

/** Check that the app can be started at all; throws AppStartError naming what is wrong. */
export function preflightApp(app: AppConfig, envPath: string | undefined): string {
  if (!fs.existsSync(app.cwd))
    throw new AppStartError('app_cwd_missing', `app working directory ${app.cwd} does not exist`, 126, { cwd: app.cwd });
  return resolveProgram(app.argv[0], app.cwd, envPath);
}

/** Starts the guard that kills process group `pgid` once this process is gone (see the header). */
function startOrphanGuard(pgid: number): ChildProcess | undefined {
  if (process.pid === 1) return undefined;
  const guard = spawn('/bin/sh', ['-c', 'cat >/dev/null; kill -s KILL -- "-$1" 2>/dev/null', 'enclaver-orphan-guard', String(pgid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  guard.once('error', (err) =>
    log.warn({ err: err.message }, 'no orphan guard (/bin/sh): the app would outlive this process if it were killed'),
  );
  guard.stdin.on('error', () => {});
  // Neither the guard nor its pipe keeps this process alive; they only matter when it is gone.
  guard.unref();
  (guard.stdin as unknown as { unref(): void }).unref();
  return guard;
}

/**
 * Where the app's stdout and stderr go: `inherit`, straight to this process's (a terminal: the app
 * sees a TTY, its colours and prompts work), or `lines`, read line by line and logged (JSON logs,
 * or lines forwarded to the outer).
 */
export type AppOutput = 'inherit' | 'lines';

export class AppSupervisor {
  private child: ChildProcess | undefined;
  private guard: ChildProcess | undefined;
  private exitPromise: Promise<AppExit> | undefined;
  private readonly app: AppConfig;
  private readonly env: Record<string, string>;

  private readonly output: AppOutput;

  constructor(app: AppConfig, env: Record<string, string>, output: AppOutput) {
    this.app = app;
    this.env = env;
    this.output = output;
  }

  /** Each line the app writes becomes one `writeAppOutput` call (a JSON record when logs are JSON). */
  private captureLines(child: ChildProcess): void {
    for (const name of ['stdout', 'stderr'] as const) {
      const from = child[name];
      if (!from) continue;
      const splitter = new LineSplitter();
      from.on('data', (chunk: Buffer) => {
        for (const line of splitter.push(chunk)) writeAppOutput(name, line);
      });
      from.on('end', () => {
        for (const line of splitter.end()) writeAppOutput(name, line);
      });
    }
  }

  /** Spawn the app; throws AppStartError when it cannot be started at all. */
  start(): number {
    const [program, ...args] = this.app.argv;
    const resolved = preflightApp(this.app, this.env.PATH);
    const child = spawn(resolved, args, {
      cwd: this.app.cwd,
      env: this.env,
      stdio: this.output === 'lines' ? ['inherit', 'pipe', 'pipe'] : 'inherit',
      detached: true,
      argv0: program,
    });
    this.child = child;
    if (child.pid !== undefined) this.guard = startOrphanGuard(child.pid);
    if (this.output === 'lines') this.captureLines(child);
    this.exitPromise = new Promise<AppExit>((resolve) => {
      child.once('error', (err) => {
        log.error({ err: err.message }, 'app failed');
        resolve({ code: 126, signal: null });
      });
      child.once('exit', (code, signal) => {
        this.killGroup('SIGTERM');
        // The app is gone: the guard may go too (it kills what is left of the group as it leaves).
        this.guard?.stdin?.end();
        resolve({ code, signal });
      });
    });
    // No pid: the spawn failed after the checks above (EAGAIN, ENOMEM); 'error' above reports it as exit 126.
    if (child.pid === undefined)
      throw new AppStartError('app_spawn_failed', `app ${program} could not be spawned`, 126, { program: resolved });
    log.info({ pid: child.pid, argv: this.app.argv, cwd: this.app.cwd }, 'app started');
    return child.pid;
  }

  get exited(): Promise<AppExit> {
    if (!this.exitPromise) throw new Error('app not started');
    return this.exitPromise;
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.child?.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // The group is already gone.
    }
  }

  /** Forward `signal`; escalate to SIGKILL after the stop timeout. Resolves when the app is gone. */
  async stop(signal: NodeJS.Signals): Promise<AppExit> {
    const exited = this.exited;
    log.info({ signal, timeout_ms: this.app.stopTimeoutMs }, 'stopping app');
    this.killGroup(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn({ timeout_ms: this.app.stopTimeoutMs }, 'app did not stop in time; sending SIGKILL');
        this.killGroup('SIGKILL');
        resolve();
      }, this.app.stopTimeoutMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    return exited;
  }
}
