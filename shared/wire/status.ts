/**
 * The status channel (vsock 17000): the inner tells the outer what its app is doing. JSON objects
 * in Status frames; the newest one is re-sent whenever the channel reconnects.
 */
export type EnclaveStatus =
  | { state: 'starting' }
  /** `accepting`: the app accepts on every port ingress forwards to (false until it binds them). */
  | { state: 'running'; pid: number; accepting: boolean }
  /** The app ended: `code` when it exited, `signal` when a signal killed it. */
  | { state: 'exited'; code: number | null; signal: string | null }
  /** The inner could not start or keep the app (missing binary, bad config…). */
  | { state: 'fatal'; error: string; code: number };

export function parseStatus(payload: Record<string, unknown>): EnclaveStatus | undefined {
  switch (payload.state) {
    case 'starting':
      return { state: 'starting' };
    case 'running':
      return typeof payload.pid === 'number' ? { state: 'running', pid: payload.pid, accepting: payload.accepting === true } : undefined;
    case 'exited':
      return (typeof payload.code === 'number' || payload.code === null) && (typeof payload.signal === 'string' || payload.signal === null)
        ? { state: 'exited', code: payload.code, signal: payload.signal }
        : undefined;
    case 'fatal':
      return typeof payload.error === 'string' && typeof payload.code === 'number'
        ? { state: 'fatal', error: payload.error, code: payload.code }
        : undefined;
    default:
      return undefined;
  }
}

/** The process exit code that stands for a status, as a shell would report it (128+N for signals). */
export function exitCodeOf(status: EnclaveStatus, signals: Record<string, number>): number | undefined {
  if (status.state === 'fatal') return status.code;
  if (status.state !== 'exited') return undefined;
  if (status.code !== null) return status.code;
  return 128 + (status.signal ? (signals[status.signal] ?? 0) : 0);
}
