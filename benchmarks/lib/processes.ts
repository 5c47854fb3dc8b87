/**
 * Child processes of a benchmark run: started with a raised fd limit when asked, stopped by pid
 * only (never by name), and all killed if the run itself is interrupted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface Tracked {
  name: string;
  pid: number;
  child: ChildProcess;
  /** The last output of the process (stdout and stderr), for error messages. */
  output(): string;
  exited: Promise<number | null>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** RLIMIT_NOFILE for the process (set with the shell's `ulimit -n`, then exec'd); see fdLimit(). */
  nofile?: number;
  /** Called with each stdout line (child helpers report over stdout). */
  onLine?: (line: string) => void;
  stdin?: 'pipe' | 'ignore';
  /**
   * Start it in a session of its own (setsid), as `role: local` starts the pair's inner. With the
   * kernel's autogroup scheduling on, a session is a scheduling group of its own; a baseline that
   * mirrors the pair puts its second process there too (docs/decisions.md, "l7tune").
   */
  ownSession?: boolean;
}

const running = new Set<Tracked>();
const OUTPUT_LIMIT = 64 * 1024;

export function start(name: string, command: string, args: string[], opts: StartOptions = {}): Tracked {
  // `exec` keeps the pid: the pid we measure is the program's, not a shell's.
  const [cmd, argv] = opts.nofile ? ['sh', ['-c', 'ulimit -n "$0" && exec "$@"', String(opts.nofile), command, ...args]] : [command, args];
  const child = spawn(cmd, argv, {
    env: opts.env ?? process.env,
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
    detached: opts.ownSession ?? false,
  });
  let out = '';
  let partial = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    keep(chunk);
    if (!opts.onLine) return;
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) opts.onLine(line);
  });
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      keep(Buffer.from(String(err)));
      resolve(null);
    });
  });
  const tracked: Tracked = { name, pid: child.pid ?? -1, child, output: () => out, exited };
  running.add(tracked);
  void exited.then(() => running.delete(tracked));
  return tracked;
}

export async function stop(t: Tracked, timeoutMs = 10_000): Promise<void> {
  if (t.child.exitCode !== null || t.child.signalCode !== null) return;
  t.child.kill('SIGTERM');
  const timer = setTimeout(() => t.child.kill('SIGKILL'), timeoutMs);
  await t.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((t) => stop(t)));
}

// An interrupted run must not leave proxies or servers behind.
process.on('exit', () => {
  for (const t of running) t.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

/** Rejects, with its output, as soon as any of these processes exits (a relay that failed to start). */
export function anyExit(procs: Tracked[]): Promise<never> {
  return Promise.race(
    procs.map((p) =>
      p.exited.then((code) => {
        throw new Error(`${p.name} exited with ${code}: ${p.output().slice(-2000)}`);
      }),
    ),
  );
}

/**
 * The highest fd limit this run can give its processes, up to `wanted`: raising the hard limit
 * needs CAP_SYS_RESOURCE; without it the current hard limit is the ceiling.
 */
export function fdLimit(wanted: number): number {
  const canSet = (n: number) => spawnSync('sh', ['-c', `ulimit -n ${n}`]).status === 0;
  if (canSet(wanted)) return wanted;
  const hard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return hard === 'unlimited' ? wanted : Math.min(wanted, Number(hard) || 1024);
}

/** Runs a program to completion; resolves with its stdout, rejects with its output on failure. */
export async function run(name: string, command: string, args: string[], opts: StartOptions = {}): Promise<string> {
  const t = start(name, command, args, opts);
  const code = await t.exited;
  if (code !== 0) throw new Error(`${name} exited with ${code}: ${t.output().slice(-2000)}`);
  return t.output();
}
