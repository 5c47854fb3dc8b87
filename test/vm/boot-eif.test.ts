/**
 * Boot proof: the EIF's own kernel, cmdline and ramdisks booted in QEMU, up to the inner proxy's
 * log lines and the app's answer. Debian's kernel stands in for the Nitro kernel (it is the
 * EIF's kernel section here), and `eif-test-init.c`, compiled static, stands in for AWS's init
 * (it follows its documented contract: /env, /cmd, chroot into /rootfs, exec, reboot). The app
 * image has no libc; its app is a Node script run with the runtime the builder bundled.
 * Nothing is read from the EIF with builder code: the sections come from the independent reader.
 * Skips, saying why, when QEMU, a static C toolchain or a Debian kernel package is unavailable.
 * `no_timer_check`: under TCG on a loaded host the kernel's IO-APIC timer check can fail and panic.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cli } from '../helpers/cli-async.js';
import { readEifIndependently } from '../helpers/eif-independent.js';
import { umociImage } from '../helpers/images.js';
import { ROOT } from '../helpers/paths.js';
import { guestKernel } from './kernel.js';

const QEMU = 'qemu-system-x86_64';
/** The vsock harness's cache (test/vm/run.ts): the same kernel serves both. */
const VM_CACHE = path.join(ROOT, '.cache', 'vm');

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Debian's kernel image, from the vsock harness's cache (downloaded there on first use, not installed). */
function debianKernel(): string | undefined {
  try {
    return guestKernel(path.resolve(process.env.ENCLAVER_VM_CACHE ?? VM_CACHE), () => undefined).vmlinuz;
  } catch {
    return undefined;
  }
}

function skipReason(): string | false {
  if (process.arch !== 'x64') return 'the boot proof runs on x86_64 hosts only';
  if (!have(QEMU)) return `${QEMU} not installed`;
  if (!have('gcc') || !fs.existsSync('/usr/lib/x86_64-linux-gnu/libc.a')) return 'no static C toolchain (gcc, libc6-dev) for the test init';
  for (const t of ['umoci', 'cpio']) if (!have(t)) return `${t} not installed`;
  if (!debianKernel()) return 'no Debian kernel package available (apt-get download linux-image-amd64 failed)';
  return false;
}

const skip = skipReason();

describe('an EIF boots in QEMU', { skip }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'boot-eif-'));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("kernel + ramdisks boot through the init contract to the inner proxy and the app's answer", { timeout: 20 * 60_000 }, async () => {
    const blobs = path.join(work, 'blobs');
    fs.mkdirSync(blobs);
    fs.copyFileSync(debianKernel()!, path.join(blobs, 'bzImage'));
    fs.writeFileSync(path.join(blobs, 'cmdline'), 'console=ttyS0 panic=-1 reboot=k quiet loglevel=1 no_timer_check\n');
    execFileSync('gcc', ['-static', '-O2', '-o', path.join(blobs, 'init'), path.join(ROOT, 'test', 'vm', 'eif-test-init.c')]);
    fs.writeFileSync(path.join(blobs, 'nsm.ko'), 'stand-in module');
    const runtime = (p: string) => `/opt/enclaver-proxy/${p}`;
    const image = umociImage(
      path.join(work, 'layout'),
      'v1',
      [
        (root) => {
          fs.mkdirSync(path.join(root, 'app'));
          fs.writeFileSync(
            path.join(root, 'app', 'server.js'),
            [
              "const http = require('node:http');",
              "const server = http.createServer((req, res) => res.end('hello from the enclave app'));",
              "server.listen(8080, '127.0.0.1', () => http.get('http://127.0.0.1:8080/', (res) => {",
              "  let body = ''; res.on('data', (d) => { body += d; });",
              "  res.on('end', () => { console.log(`app answered: ${body}`); server.close(); });",
              '}));',
            ].join('\n'),
          );
        },
      ],
      { entrypoint: [runtime('lib/ld-linux-x86-64.so.2'), '--library-path', runtime('lib'), runtime('bin/node'), '/app/server.js'] },
    );
    fs.writeFileSync(
      path.join(work, 'enclaver.yaml'),
      `version: v1\nname: boot\ntarget: boot:latest\nsources:\n  app: ${image}\negress:\n  allow: [example.org]\n`,
    );
    const built = await cli([
      'build',
      '-f',
      path.join(work, 'enclaver.yaml'),
      '--out',
      path.join(work, 'out'),
      '--blobs',
      blobs,
      '--no-release',
    ]);
    assert.equal(built.code, 0, built.stderr);

    const eif = readEifIndependently(path.join(work, 'out', 'application.eif'));
    const section = (type: number) => eif.sections.filter((s) => s.type === type).map((s) => s.payload);
    fs.writeFileSync(path.join(work, 'kernel'), section(1)[0]!);
    fs.writeFileSync(path.join(work, 'initrd'), Buffer.concat(section(3)));
    const cmdline = section(2)[0]!.toString();

    const accel =
      fs.readFileSync('/proc/cpuinfo', 'utf8').match(/\b(vmx|svm)\b/) && fs.existsSync('/dev/kvm')
        ? ['-enable-kvm', '-cpu', 'host']
        : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
    const qemu = spawn(
      QEMU,
      [
        ...accel,
        '-m',
        '1536',
        '-smp',
        '2',
        '-display',
        'none',
        '-serial',
        'stdio',
        '-monitor',
        'none',
        '-no-reboot',
        '-kernel',
        path.join(work, 'kernel'),
        '-initrd',
        path.join(work, 'initrd'),
        '-append',
        cmdline,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let console = '';
    qemu.stdout.on('data', (d: Buffer) => {
      console += d.toString();
    });
    qemu.stderr.on('data', (d: Buffer) => {
      console += d.toString();
    });
    const killer = setTimeout(() => qemu.kill('SIGKILL'), 18 * 60_000);
    const code = await new Promise<number | null>((resolve) => qemu.on('close', resolve));
    clearTimeout(killer);
    // Kernel messages (`[    2.865386] Invalid ELF header len 15` from the stand-in nsm.ko) share the serial
    // console with user space and can land in the middle of a line it is still writing: drop them first.
    // eslint-disable-next-line no-control-regex -- the inner's pretty log colours
    const text = console.replace(/\x1b\[[0-9;]*m/g, '').replace(/\[ *\d+\.\d+\] [^\r\n]*\r?\n/g, '');
    assert.equal(code, 0, `QEMU exited with ${code}:\n${text.slice(-4000)}`);
    assert.match(text, /test-init: started/);
    // One line per event on the console (a TTY: pretty logs): `INFO: side/component: message {fields}`.
    assert.match(
      text,
      /INFO: inner\/listener: listening \{"listener":"egress","address":"tcp:\/\/127\.0\.0\.1:10000"\}/,
      'the inner proxy started and opened its listener',
    );
    assert.match(text, /INFO: inner\/app: app started \{.*"\/app\/server\.js"/, 'the inner started the app');
    assert.match(text, /app answered: hello from the enclave app/, "the app's answer");
    assert.match(text, /test-init: command exited, status 0/, 'the inner exited 0 after the app');
  });
});
