/**
 * Free loopback ports for tests that run in parallel (never a fixed port), for a process that
 * will bind the port later (a child proxy reading it from its config).
 *
 * "Bind port 0, read the port, close" alone is racy between the close and the child's bind:
 * - the kernel hands the same range to every outgoing connection as its source port, and the
 *   suite opens thousands of them, so one can take the port in between;
 * - another test file (or a second copy of the suite) can be given the same port by the kernel.
 * So ports come from below the kernel's ephemeral range (never a source port, never a port 0
 * answer), and each is claimed with an exclusive file in a directory shared by every test
 * process on the machine; a claim whose process is gone is taken over. A candidate is also
 * bound once, so a port some other program holds is skipped.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const CLAIMS = path.join(os.tmpdir(), 'enclaver-proxy-test-ports');
const LOWEST = 10_000;
const mine: string[] = [];
process.on('exit', () => {
  for (const f of mine) fs.rmSync(f, { force: true });
});

/** The first port of the kernel's ephemeral range (source ports and `listen(0)` come from there). */
function ephemeralStart(): number {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    if (Number.isInteger(n) && n > LOWEST + 1000) return n;
  } catch {
    /* not Linux: keep the IANA default */
  }
  return 49_152;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claims `port` for this process; false when a live process holds the claim. */
function claim(port: number): boolean {
  const file = path.join(CLAIMS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      mine.push(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(file, 'utf8') || '0');
      if (holder && alive(holder)) return false;
      fs.rmSync(file, { force: true }); // left by a process that is gone
    }
  }
  return false;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  fs.mkdirSync(CLAIMS, { recursive: true });
  const span = ephemeralStart() - LOWEST;
  for (let tries = 0; tries < 10_000; tries++) {
    const port = LOWEST + Math.floor(Math.random() * span);
    if (!claim(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port below the ephemeral range (claims in ${CLAIMS})`);
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) out.push(await freePort());
  return out;
}
