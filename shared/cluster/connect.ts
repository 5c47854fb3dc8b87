/**
 * Connecting to a cluster: endpoints are tried in order until one accepts within the cluster's
 * connect timeout. The last failure is reported, with every attempt in its context.
 *
 * A cluster whose endpoints are not listening yet (the enclave still booting, the app not yet
 * bound to its port) is waited for, within the same connect timeout: the connection is held and
 * the endpoints are tried again, so a client that arrives a moment early is served instead of
 * reset. At most MAX_HELD connections per cluster wait at once; others fail at once, as before.
 */
import type net from 'node:net';
import { TransportError } from '../errors/index.js';
import type { ClusterConfig } from '../config/types.js';
import { connect, formatAddress } from '../transport/index.js';

/** Connections per cluster held while its endpoints are not listening. */
export const MAX_HELD = 1024;
/** Between rounds while held: short at first (a listener is usually seconds away), then capped. */
const HOLD_RETRY_MAX_MS = 200;
const HOLD_RETRY_MS = [10, 25, 50, 100, HOLD_RETRY_MAX_MS];

const held = new Map<string, number>();

/** "Nobody listens there (yet)": refused TCP, an emulated vsock socket file not there, a vsock reset. */
function notListening(err: TransportError): boolean {
  return err.errno === 'ECONNREFUSED' || err.errno === 'ENOENT' || err.errno === 'ECONNRESET';
}

async function tryEndpoints(
  cluster: ClusterConfig,
  deadline: number,
  signal: AbortSignal | undefined,
  failures: TransportError[],
): Promise<{ socket: net.Socket; endpoint: string } | undefined> {
  for (const endpoint of cluster.endpoints) {
    try {
      const socket = await connect(endpoint, { timeoutMs: Math.max(1, deadline - Date.now()), ...(signal ? { signal } : {}) });
      return { socket, endpoint: formatAddress(endpoint) };
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      failures.push(err);
      if (signal?.aborted) break;
    }
  }
  return undefined;
}

export async function connectCluster(cluster: ClusterConfig, signal?: AbortSignal): Promise<{ socket: net.Socket; endpoint: string }> {
  const deadline = Date.now() + cluster.connectTimeoutMs;
  const failures: TransportError[] = [];
  let holding = false;
  try {
    for (let round = 0; ; round++) {
      const connected = await tryEndpoints(cluster, deadline, signal, failures);
      if (connected) return connected;
      const retryIn = HOLD_RETRY_MS[Math.min(round, HOLD_RETRY_MS.length - 1)] ?? HOLD_RETRY_MAX_MS;
      const roundFailures = failures.slice(-cluster.endpoints.length);
      const worthWaiting = roundFailures.every(notListening) && !signal?.aborted && Date.now() + retryIn < deadline;
      if (!worthWaiting) break;
      if (!holding) {
        if ((held.get(cluster.name) ?? 0) >= MAX_HELD) break;
        holding = true;
        held.set(cluster.name, (held.get(cluster.name) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, retryIn));
    }
  } finally {
    if (holding) held.set(cluster.name, (held.get(cluster.name) ?? 1) - 1);
  }
  const last = failures.at(-1);
  if (!last) throw new TransportError('connect', `cluster ${cluster.name}`, 'no endpoint was tried');
  if (failures.length === 1) throw last;
  throw new TransportError(
    'connect',
    `cluster ${cluster.name}`,
    `all ${failures.length} attempts failed; last: ${last.message}`,
    last.errno,
    failures,
  );
}
