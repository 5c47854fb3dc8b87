/**
 * The relay's private-address guard: defence in depth behind the inner's policy. Addresses
 * outside the public Internet (loopback, private, link-local such as the metadata service, and
 * their IPv6 disguises) are refused unless the operator allowed them, or the name came from the
 * operator's hosts file.
 */
import { addressesToJudge, cidrContains, isNonPublic, type IpAddress, type IpCidr } from '../../shared/egress/ip.js';

export interface GuardOptions {
  /** true: no guard; a list: these non-public ranges are allowed; false/undefined: all refused. */
  allowPrivate?: boolean | readonly IpCidr[];
}

export class AddressGuard {
  constructor(private readonly opts: GuardOptions = {}) {}

  /** True when a connection to `ip` may be made. */
  permits(ip: IpAddress, trusted: boolean): boolean {
    if (trusted || this.opts.allowPrivate === true) return true;
    if (!isNonPublic(ip)) return true;
    const allowed = this.opts.allowPrivate;
    if (!allowed || allowed.length === 0) return false;
    // Every address hidden in it must be inside an allowed range, not just one of them.
    return addressesToJudge(ip).every((a) => allowed.some((c) => cidrContains(c, a)));
  }
}
