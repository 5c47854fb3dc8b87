/**
 * Holds many idle tunnels open: `node tunnel-client.js PORT COUNT`. Each connection sends one byte
 * and waits for its echo, so the tunnel exists end to end before it counts. Reports on stdout:
 * {"opened": N} (or {"error": …}); on the line "close" on stdin it closes them all, waits until
 * every socket is closed and reports {"closed": N}.
 */
import net from 'node:net';
import readline from 'node:readline';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const BATCH = 256;
const sockets: net.Socket[] = [];

function openOne(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.once('error', fail);
    s.once('close', () => reject(new Error('closed before the echo came back')));
    s.once('connect', () => s.write('.'));
    s.once('data', () => {
      s.off('error', fail);
      s.removeAllListeners('close');
      s.on('error', () => {});
      resolve(s);
    });
  });
}

async function main(): Promise<void> {
  try {
    while (sockets.length < count) {
      const n = Math.min(BATCH, count - sockets.length);
      sockets.push(...(await Promise.all(Array.from({ length: n }, openOne))));
    }
    process.stdout.write(`${JSON.stringify({ opened: sockets.length })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ error: (err as Error).message, opened: sockets.length })}\n`);
  }
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() !== 'close') return;
    let open = sockets.length;
    if (open === 0) finish();
    for (const s of sockets) {
      s.once('close', () => {
        if (--open === 0) finish();
      });
      s.destroy();
    }
  });
  const finish = () => {
    process.stdout.write(`${JSON.stringify({ closed: sockets.length })}\n`);
    rl.close();
    process.exit(0);
  };
}

void main();
