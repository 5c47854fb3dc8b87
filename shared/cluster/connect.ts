/**
 * Connecting to a cluster: endpoints are tried in order until one accepts within the cluster's
 * connect timeout. The last failure is reported, with every attempt in its context.
 */
import type net from 'node:net';
import { TransportError } from '../errors/index.js';
import type { ClusterConfig } from '../config/types.js';
import { connect, formatAddress } from '../transport/index.js';

export async function connectCluster(cluster: ClusterConfig, signal?: AbortSignal): Promise<{ socket: net.Socket; endpoint: string }> {
  const failures: TransportError[] = [];
  for (const endpoint of cluster.endpoints) {
    try {
      const socket = await connect(endpoint, { timeoutMs: cluster.connectTimeoutMs, ...(signal ? { signal } : {}) });
      return { socket, endpoint: formatAddress(endpoint) };
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      failures.push(err);
      if (signal?.aborted) break;
    }
  }
  const last = failures.at(-1);
  if (!last) throw new TransportError('connect', `cluster ${cluster.name}`, 'no endpoint was tried');
  if (failures.length === 1) throw last;
  throw new TransportError('connect', `cluster ${cluster.name}`, `all ${failures.length} endpoints failed; last: ${last.message}`, last.errno, failures);
}
