/** Loopback helpers: free ports and waiting for a path to carry bytes end to end. */
import net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** One echo round trip through `port`; resolves true when the byte came back. */
function echoOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => s.write('?'));
    s.once('data', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** Waits until a byte sent to `port` comes back (the whole chain up to the echo server is up). */
export async function waitForEcho(port: number, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await echoOnce(port, 1000)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: no echo through port ${port} within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
