/**
 * The guest's initramfs: static busybox, the modules the harness needs, and an `/init` that loads
 * them, mounts this machine's root read-only and the project read-write (both over virtio-9p, at
 * the same paths as here), brings `lo` up, runs the run's command chrooted into that root, writes
 * its exit code where the host reads it, and powers off. Rebuilt only when its inputs change.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GUEST_MODULES, loadOrder, type GuestKernel } from './kernel.js';

const BUSYBOX = '/bin/busybox';

/** The marker the guest prints on the console with the command's exit code (a backup for the file). */
export const EXIT_MARKER = 'ENCLAVER_VM_EXIT_CODE=';

/**
 * Kernel command-line parameters with `=` that the kernel does not know become init's environment:
 * enclaver_project (the read-write share's mount point) and enclaver_run (the run directory, inside
 * the project, holding command.sh and receiving exit-code).
 */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do
  insmod /modules/$m.ko || echo "enclaver-vm: insmod $m failed"
done
fail() { echo "enclaver-vm: $1"; echo "${EXIT_MARKER}125"; poweroff -f; }
opts=trans=virtio,version=9p2000.L,msize=512000,cache=loose
mkdir -p /mnt
mount -t 9p -o $opts,ro hostroot /mnt || fail "cannot mount the host root over 9p"
# Fresh /tmp and /run first, then the project: a checkout under /tmp (CI clones there) stays visible.
mount -t tmpfs tmp /mnt/tmp
mount -t tmpfs run /mnt/run
mkdir -p /mnt$enclaver_project
mount -t 9p -o $opts project /mnt$enclaver_project || fail "cannot mount the project over 9p"
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs shm /mnt/dev/shm
ip link set lo up || fail "cannot bring lo up"
chroot /mnt /bin/sh $enclaver_run/command.sh
rc=$?
echo $rc > /mnt$enclaver_run/exit-code
sync
echo "${EXIT_MARKER}$rc"
poweroff -f
`;

/** Writes (if needed) and returns the initramfs for this kernel. */
export function guestInitramfs(cacheDir: string, kernel: GuestKernel): string {
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing (apt-get install busybox-static)`);
  const order = loadOrder(GUEST_MODULES, kernel.modules);
  const key = crypto
    .createHash('sha256')
    .update(INIT)
    .update(kernel.release)
    .update(order.join(','))
    .update(fs.readFileSync(BUSYBOX))
    .digest('hex')
    .slice(0, 16);
  const out = path.join(cacheDir, `initramfs-${key}.cpio.gz`);
  if (fs.existsSync(out)) return out;
  const stage = fs.mkdtempSync(path.join(cacheDir, 'initramfs-stage-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'mnt', 'modules', 'tmp']) fs.mkdirSync(path.join(stage, d));
    fs.copyFileSync(BUSYBOX, path.join(stage, 'bin/busybox'));
    fs.chmodSync(path.join(stage, 'bin/busybox'), 0o755);
    for (const m of order)
      fs.copyFileSync(kernel.modules.get(m) ?? kernel.modules.get(m.replace(/_/g, '-'))!, path.join(stage, 'modules', `${m}.ko`));
    fs.writeFileSync(path.join(stage, 'modules/order'), `${order.join('\n')}\n`);
    fs.writeFileSync(path.join(stage, 'init'), INIT, { mode: 0o755 });
    const files = execFileSync('find', ['.', '-mindepth', '1'], { cwd: stage, encoding: 'utf8' });
    const cpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: stage, input: files, maxBuffer: 256 << 20 });
    const tmp = `${out}.tmp`;
    fs.writeFileSync(tmp, execFileSync('gzip', ['-1'], { input: cpio, maxBuffer: 256 << 20 }));
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  return out;
}
