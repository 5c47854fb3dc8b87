/**
 * One guest boot: QEMU with the Debian kernel and our initramfs, this machine's root shared
 * read-only and the project read-write over virtio-9p, running one command and powering off.
 *
 * Acceleration: KVM only where the CPU advertises vmx/svm (a stock kernel cannot run on the PVM
 * flavour of /dev/kvm these machines have); otherwise QEMU's software emulation (TCG), which works
 * everywhere and is 8–50× slower. A hard timeout kills QEMU by its PID: a hung guest never hangs CI.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXIT_MARKER } from './initramfs.js';

export interface BootOptions {
  qemu: string;
  vmlinuz: string;
  initramfs: string;
  /** The project directory (shared read-write at the same path in the guest). */
  project: string;
  cacheDir: string;
  /** argv of the command, run in the project directory inside the guest. */
  command: string[];
  /** The guest's environment, complete: nothing else from this process leaks in. */
  env: Record<string, string>;
  timeoutMs: number;
  memoryMib: number;
  cpus: number;
  /** Each line the guest prints on its console. */
  onLine: (line: string) => void;
}

export type BootResult =
  | { kind: 'exited'; code: number; durationMs: number }
  | { kind: 'timed_out'; durationMs: number }
  | { kind: 'no_exit_code'; qemuCode: number | null; durationMs: number };

export function kvmUsable(): boolean {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return /\b(vmx|svm)\b/.test(cpuinfo) && fs.existsSync('/dev/kvm');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script the guest's init runs (chrooted): environment, working directory, command. */
function commandScript(opts: BootOptions): string {
  const exports = Object.entries(opts.env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  return ['#!/bin/sh', ...exports, `cd ${shellQuote(opts.project)} || exit 126`, `${opts.command.map(shellQuote).join(' ')}`, ''].join(
    '\n',
  );
}

export async function bootGuest(opts: BootOptions): Promise<BootResult> {
  for (const p of [opts.project, opts.cacheDir]) {
    // Both travel on the kernel command line, where a space would split them.
    if (/[\s"']/.test(p)) throw new Error(`the VM harness needs paths without spaces or quotes: ${p}`);
  }
  const runDir = path.join(opts.cacheDir, 'runs', `${Date.now()}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(runDir, 'command.sh'), commandScript(opts), { mode: 0o755 });
  const accel = kvmUsable() ? ['-enable-kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
  const args = [
    ...accel,
    '-m',
    String(opts.memoryMib),
    '-smp',
    String(opts.cpus),
    '-display',
    'none',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-no-reboot',
    '-kernel',
    opts.vmlinuz,
    '-initrd',
    opts.initramfs,
    '-append',
    `console=ttyS0 quiet loglevel=3 panic=-1 enclaver_project=${opts.project} enclaver_run=${runDir}`,
    '-virtfs',
    'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs',
    `local,path=${opts.project},mount_tag=project,security_model=none`,
    '-device',
    'virtio-rng-pci',
  ];
  const started = Date.now();
  const qemu = spawn(opts.qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let markerCode: number | undefined;
  let pending = '';
  const onData = (d: Buffer) => {
    pending += d.toString('utf8').replace(/\r/g, '');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const at = line.indexOf(EXIT_MARKER);
      if (at >= 0) markerCode = Number(line.slice(at + EXIT_MARKER.length).trim());
      opts.onLine(line);
    }
  };
  qemu.stdout.on('data', onData);
  qemu.stderr.on('data', onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (qemu.pid !== undefined) process.kill(qemu.pid, 'SIGKILL');
  }, opts.timeoutMs);
  const killOnExit = () => {
    if (qemu.pid !== undefined && qemu.exitCode === null) process.kill(qemu.pid, 'SIGKILL');
  };
  // Ctrl-C or a CI timeout stops the guest too: QEMU never outlives the harness.
  const onSignal = (signal: NodeJS.Signals) => {
    killOnExit();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.once('exit', killOnExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const qemuCode = await new Promise<number | null>((resolve) => qemu.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  process.removeListener('exit', killOnExit);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  const durationMs = Date.now() - started;
  if (timedOut) return { kind: 'timed_out', durationMs };
  const file = path.join(runDir, 'exit-code');
  const fromFile = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8').trim()) : undefined;
  fs.rmSync(runDir, { recursive: true, force: true });
  const code = fromFile ?? markerCode;
  if (code === undefined || Number.isNaN(code)) return { kind: 'no_exit_code', qemuCode, durationMs };
  return { kind: 'exited', code, durationMs };
}
