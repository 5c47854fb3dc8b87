/**
 * `npm run test:vsock`: the real-AF_VSOCK tests, run inside a QEMU guest whose kernel has the
 * vsock loopback transport (CID 1). This machine's own kernel cannot give us real vsock: its
 * /dev/vsock belongs to the VM host, which tests must never touch.
 *
 * Installs what it needs (Debian packages; the kernel is unpacked into the cache, not installed),
 * boots once, runs every real-vsock test file in that one boot, and exits with the guest's exit
 * code. Where QEMU cannot run it says why and exits 0 (a skip tied to the machine).
 *
 *   npm run test:vsock [-- dist/test/…/x.test.js …]     # default: every real-vsock test file
 * Environment: ENCLAVER_VM_CACHE (default <repo>/.cache/vm), ENCLAVER_VM_TIMEOUT_S (default 900).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { guestKernel } from './kernel.js';
import { guestInitramfs } from './initramfs.js';
import { bootGuest, kvmUsable } from './qemu.js';
import { ENV_REQUIRE_VSOCK } from '../helpers/vsock-loopback.js';

const PACKAGES: Record<string, string> = { 'qemu-system-x86_64': 'qemu-system-x86', busybox: 'busybox-static', cpio: 'cpio' };
/** Every test file that needs real vsock; they skip (with the reason) outside the guest. */
const DEFAULT_TESTS = ['dist/test/integration/native-vsock.test.js', 'dist/test/vm/guest'];

function log(line: string): void {
  process.stdout.write(`[vm] ${line}\n`);
}

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    if (dir && fs.existsSync(p)) return p;
  }
  if (cmd === 'busybox' && fs.existsSync('/bin/busybox')) return '/bin/busybox';
  return undefined;
}

/** Installs the missing packages; returns a reason to skip when that is impossible here. */
function ensurePackages(): string | undefined {
  const missing = Object.entries(PACKAGES)
    .filter(([cmd]) => !which(cmd))
    .map(([, pkg]) => pkg);
  if (missing.length === 0) return undefined;
  if (!which('apt-get')) return `QEMU is not installed and this machine has no apt-get to install ${missing.join(', ')}`;
  if (process.getuid?.() !== 0) return `QEMU is not installed and installing ${missing.join(', ')} needs root`;
  log(`installing ${missing.join(' ')}`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return undefined;
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return `the harness boots an x86-64 Linux guest; this is ${process.platform}-${process.arch}`;
  if (!fs.existsSync(path.join(ROOT, 'native/build/Release/enclaver_native.node')))
    return "the native addon is not built (real vsock needs it): see npm install's output";
  return ensurePackages();
}

async function main(): Promise<number> {
  const reason = skipReason();
  if (reason) {
    log(`SKIPPED: ${reason}`);
    return 0;
  }
  const cacheDir = path.resolve(process.env.ENCLAVER_VM_CACHE ?? path.join(ROOT, '.cache/vm'));
  fs.mkdirSync(cacheDir, { recursive: true });
  const kernel = guestKernel(cacheDir, log);
  const initramfs = guestInitramfs(cacheDir, kernel);
  const tests = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT_TESTS;
  const timeoutMs = Number(process.env.ENCLAVER_VM_TIMEOUT_S ?? 900) * 1000;
  log(
    `kernel ${kernel.release}, ${kvmUsable() ? 'KVM' : 'TCG (software emulation: no vmx/svm in /proc/cpuinfo)'}, timeout ${timeoutMs / 1000} s`,
  );
  log(`guest runs: node --test ${tests.join(' ')}`);
  const result = await bootGuest({
    qemu: which('qemu-system-x86_64')!,
    vmlinuz: kernel.vmlinuz,
    initramfs,
    project: ROOT,
    cacheDir,
    // One file at a time: the guest is slow, and the files share the guest's vsock port space.
    command: [process.execPath, '--test', '--test-concurrency=1', ...tests],
    env: {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: '/tmp',
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      [ENV_REQUIRE_VSOCK]: '1',
    },
    timeoutMs,
    memoryMib: 4096,
    cpus: 2,
    onLine: (line) => process.stdout.write(`${line}\n`),
  });
  const seconds = (result.durationMs / 1000).toFixed(1);
  switch (result.kind) {
    case 'exited':
      log(`guest command exited with ${result.code} after ${seconds} s (boot included)`);
      return result.code;
    case 'timed_out':
      log(`FAILED: the guest did not finish within ${timeoutMs / 1000} s; QEMU killed`);
      return 124;
    case 'no_exit_code':
      log(`FAILED: QEMU ended (code ${result.qemuCode}) after ${seconds} s without the guest reporting an exit code`);
      return 125;
  }
}

// `node --test dist/test/` also runs every .js under test/ (Node's default patterns): only the npm
// script boots the guest, never the unit-test run (the test runner sets NODE_TEST_CONTEXT).
if (process.env.NODE_TEST_CONTEXT === undefined) process.exitCode = await main();
