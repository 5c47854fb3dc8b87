/**
 * The guest kernel for the vsock harness: Debian's generic kernel package (the `cloud` flavour has
 * no 9p), downloaded with apt and unpacked into the harness cache, never installed into this
 * machine's /boot. Also reads each module's `depends=` so the guest loads them in a working order
 * whatever the kernel version.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** What the guest needs: virtio PCI, 9p over virtio (the shares), vsock loopback, virtio-rng (entropy). */
export const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'vsock_loopback', 'virtio-rng'] as const;

export interface GuestKernel {
  vmlinuz: string;
  /** Module name → .ko path, for every module of the kernel. */
  modules: Map<string, string>;
  release: string;
}

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The versioned package behind the `linux-image-amd64` meta-package, e.g. linux-image-6.1.0-57-amd64. */
function kernelPackageName(): string {
  const depends = run('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(depends);
  if (!m) throw new Error(`apt-cache depends linux-image-amd64 names no kernel package:\n${depends}`);
  return m[1]!;
}

function indexModules(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) out.set(e.name.slice(0, -3), p);
    }
  };
  walk(root);
  return out;
}

/** The kernel unpacked under `cacheDir/kernel` (downloaded on first use). */
export function guestKernel(cacheDir: string, log: (line: string) => void): GuestKernel {
  const dir = path.join(cacheDir, 'kernel');
  const done = path.join(dir, '.unpacked');
  if (!fs.existsSync(done)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const pkg = kernelPackageName();
    log(`downloading ${pkg} (apt-get download; unpacked into ${dir}, not installed)`);
    run('apt-get', ['download', pkg], dir);
    const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
    run('dpkg-deb', ['-x', deb, 'root'], dir);
    fs.rmSync(path.join(dir, deb));
    fs.writeFileSync(done, `${pkg}\n`);
  }
  const boot = path.join(dir, 'root/boot');
  const vmlinuz = fs.readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`no vmlinuz in ${boot}`);
  const release = vmlinuz.slice('vmlinuz-'.length);
  return { vmlinuz: path.join(boot, vmlinuz), modules: indexModules(path.join(dir, 'root/lib/modules', release)), release };
}

/** The `depends=` entry of a module's .modinfo section (comma-separated names, maybe empty). */
export function moduleDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const start = at + key.length;
  const end = ko.indexOf(0, start);
  const text = ko.subarray(start, end < 0 ? undefined : end).toString('latin1');
  return text.split(',').filter((n) => n.length > 0);
}

/** `wanted` and everything they depend on, dependencies first. */
export function loadOrder(wanted: readonly string[], modules: Map<string, string>): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle at ${name}`);
    const file = modules.get(name) ?? modules.get(name.replace(/_/g, '-'));
    if (!file) throw new Error(`kernel module ${name} not found (built into this kernel? then drop it from the list)`);
    visiting.add(name);
    for (const dep of moduleDepends(fs.readFileSync(file))) visit(dep);
    visiting.delete(name);
    order.push(name);
  };
  for (const w of wanted) visit(w);
  return order;
}
