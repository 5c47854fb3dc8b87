/**
 * Readiness of what a side forwards to: resolves once every address has accepted a connection
 * (each probe connects and closes at once, as a TCP health check does). Used by the inner for
 * "the app is accepting on its ingress ports", which its `/ready` and its status to the outer
 * report. Probes repeat until they succeed or `signal` aborts; nothing is logged per attempt.
 */
import { connect, formatAddress, type Address } from '../transport/index.js';

const PROBE_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1000;

export async function whenAccepting(addresses: Address[], signal: AbortSignal): Promise<void> {
  const waiting = new Map(addresses.map((a) => [formatAddress(a), a]));
  while (waiting.size > 0) {
    for (const [key, address] of [...waiting]) {
      try {
        const socket = await connect(address, { timeoutMs: PROBE_TIMEOUT_MS, signal });
        socket.destroy();
        waiting.delete(key);
      } catch {
        if (signal.aborted) throw new Error('stopped waiting for the app to accept');
      }
    }
    if (waiting.size > 0) await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
  }
}
