/**
 * The relay's private-address guard: defence in depth behind the inner's policy. Addresses
 * outside the public Internet (loopback, private, link-local such as the metadata service, and
 * their IPv6 disguises) are refused unless the operator allowed them, the name came from the
 * operator's hosts file, or the enclave's own policy allows the range explicitly (the inner sends
 * those ranges with each request: the inner is the decider, the guard is there against names
 * that resolve somewhere private, i.e. DNS rebinding).
 */
import { addressesToJudge, cidrContains, formatCidr, isNonPublic, type IpAddress, type IpCidr } from '../../shared/egress/ip.js';

export interface GuardOptions {
  /** true: no guard; a list: these non-public ranges are allowed; false/undefined: all refused. */
  allowPrivate?: boolean | readonly IpCidr[];
}

export class AddressGuard {
  constructor(private readonly opts: GuardOptions = {}) {}

  /**
   * True when a connection to `ip` may be made: a public address, a name from the operator's
   * hosts file (`trusted`), or a non-public address inside the operator's `allow_private` or
   * inside a range the enclave's policy allows explicitly (`enclaveRanges`, from the request).
   */
  permits(ip: IpAddress, trusted: boolean, enclaveRanges: readonly IpCidr[] = []): boolean {
    if (trusted || this.opts.allowPrivate === true) return true;
    if (!isNonPublic(ip)) return true;
    const operator = Array.isArray(this.opts.allowPrivate) ? this.opts.allowPrivate : [];
    if (operator.length === 0 && enclaveRanges.length === 0) return false;
    // Every address hidden in it must be inside an allowed range, not just one of them.
    return addressesToJudge(ip).every((a) => operator.some((c) => cidrContains(c, a)) || enclaveRanges.some((c) => cidrContains(c, a)));
  }

  /** What the guard refuses, for the relay's start-up log line. */
  describe(): string {
    if (this.opts.allowPrivate === true) return 'off (allow_private: true): every address may be reached';
    const operator =
      Array.isArray(this.opts.allowPrivate) && this.opts.allowPrivate.length > 0
        ? `, in allow_private (${this.opts.allowPrivate.map(formatCidr).join(', ')})`
        : '';
    return (
      "refuses loopback, private, link-local and other non-public addresses unless they are in a range the enclave's policy " +
      `allows explicitly (sent with each request)${operator}, or come from the hosts file: a name that resolves somewhere private is refused`
    );
  }
}
