/**
 * Does the pump splice on the transports this deployment uses? `doctor` used to answer from one
 * Unix socketpair; splice support depends on the socket family (a kernel may splice TCP and Unix
 * but not vsock, or the reverse). This check runs the real native pump between two connections of
 * each transport, sends a few hundred KiB through, and reports the path the pump itself reports
 * (`splice` or `copy`): the same answer the per-listener metric
 * `enclaver_pumped_connections_total{path}` gives for live traffic.
 *
 * vsock is checked only over the loopback transport (CID 1), never by dialling the host or a
 * parent; where there is none the answer says so.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { messageOf } from '../errors/index.js';
import type { Pump, PumpPath } from '../pump/types.js';
import { VSOCK_CID_LOCAL, type Address } from '../transport/address.js';
import { connect, listen } from '../transport/index.js';
import { vsockSettings } from '../transport/vsock.js';

export type TransportSplice =
  { result: 'checked'; path: PumpPath; bytes: number } | { result: 'not_checked'; reason: string } | { result: 'failed'; error: string };

export type TransportName = 'tcp' | 'unix' | 'vsock';

const PROBE_BYTES = 512 * 1024;
const TIMEOUT_MS = 3000;

/** Two connected legs of one transport: `a` (client) ↔ `b` (accepted). */
async function legPair(addr: Address): Promise<{ a: net.Socket; b: net.Socket; close(): Promise<void> }> {
  let accepted: (s: net.Socket) => void = () => {};
  const acceptedOne = new Promise<net.Socket>((resolve) => {
    accepted = resolve;
  });
  const listening = await listen(addr, (s) => accepted(s));
  const target: Address =
    addr.kind === 'tcp' ? { kind: 'tcp', host: addr.host, port: (listening.server.address() as net.AddressInfo).port } : addr;
  try {
    const a = await connect(target, { timeoutMs: TIMEOUT_MS });
    const b = await acceptedOne;
    return { a, b, close: () => listening.close() };
  } catch (err) {
    await listening.close();
    throw err;
  }
}

/** Pumps PROBE_BYTES from one leg pair to the other and returns how the pump moved them. */
async function pumpThrough(pump: Pump, addr: () => Address): Promise<TransportSplice> {
  const first = await legPair(addr());
  const second = await legPair(addr());
  try {
    // client ── first ──▶ [pump] ── second ──▶ sink
    const session = pump.run(first.b, second.a);
    const received = new Promise<number>((resolve, reject) => {
      let n = 0;
      second.b.on('data', (d: Buffer) => {
        n += d.length;
      });
      second.b.once('end', () => {
        second.b.end();
        resolve(n);
      });
      second.b.once('error', reject);
      // Accepted sockets start paused (listeners hand them to the pump); this end reads them itself.
      second.b.resume();
    });
    first.a.on('data', () => {});
    first.a.on('error', () => {});
    first.a.end(crypto.randomBytes(PROBE_BYTES));
    const bytes = await received;
    const result = await session.done;
    first.a.destroy();
    if (bytes !== PROBE_BYTES) return { result: 'failed', error: `${bytes} of ${PROBE_BYTES} bytes arrived` };
    return { result: 'checked', path: result.path, bytes };
  } finally {
    await first.close();
    await second.close();
  }
}

/** Whether vsock can be checked here: real AF_VSOCK with a loopback transport (CID 1). */
async function vsockLoopback(): Promise<string | undefined> {
  if (vsockSettings().emulationDir) return 'vsock is emulated by Unix sockets here (see unix)';
  const port = 0x40000000 + crypto.randomInt(0x10000000);
  try {
    const s = await connect({ kind: 'vsock', cid: VSOCK_CID_LOCAL, port }, { timeoutMs: 500 });
    s.destroy();
    return undefined;
  } catch (err) {
    const code = (err as { errno?: string }).errno;
    if (code === 'ECONNRESET' || code === 'ECONNREFUSED') return undefined;
    return 'no vsock loopback transport on this kernel to make a vsock pair (live vsock connections report their path in enclaver_pumped_connections_total)';
  }
}

export async function checkTransportSplice(pump: Pump): Promise<Record<TransportName, TransportSplice>> {
  const attempt = async (make: () => Promise<TransportSplice>): Promise<TransportSplice> => {
    try {
      return await make();
    } catch (err) {
      return { result: 'failed', error: messageOf(err) };
    }
  };
  const tcp = await attempt(() => pumpThrough(pump, () => ({ kind: 'tcp', host: '127.0.0.1', port: 0 })));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclaver-doctor-'));
  let n = 0;
  const unix = await attempt(() => pumpThrough(pump, () => ({ kind: 'unix', path: path.join(dir, `${n++}.sock`) })));
  fs.rmSync(dir, { recursive: true, force: true });
  const noVsock = await vsockLoopback();
  const vsock =
    noVsock !== undefined
      ? { result: 'not_checked' as const, reason: noVsock }
      : await attempt(() =>
          pumpThrough(pump, () => ({ kind: 'vsock', cid: VSOCK_CID_LOCAL, port: 0x50000000 + crypto.randomInt(0x10000000) })),
        );
  return { tcp, unix, vsock };
}

export function formatTransportSplice(r: TransportSplice): string {
  switch (r.result) {
    case 'checked':
      return r.path === 'splice' ? 'spliced' : `${r.path === 'copy' ? 'COPIED (splice refused on these sockets)' : r.path}`;
    case 'not_checked':
      return `not checked: ${r.reason}`;
    case 'failed':
      return `check failed: ${r.error}`;
  }
}
