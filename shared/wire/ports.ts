/**
 * Vsock ports of the pair. 17000–17009 are reserved: a user listener or cluster that uses one of
 * them is a config error, so the pair's own channels can never be shadowed.
 */
export const RESERVED_PORT_MIN = 17000;
export const RESERVED_PORT_MAX = 17009;

/** The outer listens on these and the inner dials them on the parent (parent_cid, 3 on Nitro), except Metrics. */
export const PairPort = {
  Status: 17000,
  Logs: 17001,
  Egress: 17002,
  Audit: 17003,
  Imds: 17004,
  /** The inner listens here: the outer fetches the enclave's Prometheus metrics. */
  Metrics: 17005,
  /** The outer tells the inner its clock (the enclave's clock is kept in step with the parent's). */
  Clock: 17006,
} as const;

export function isReservedPort(port: number): boolean {
  return port >= RESERVED_PORT_MIN && port <= RESERVED_PORT_MAX;
}
