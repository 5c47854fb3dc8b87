/**
 * Names to addresses for the relay: IP literals as they are, then the hosts file, then the
 * system resolver (every answer, both families). The caller connects to these literals and
 * never by name, so what was checked is what is dialled (no re-resolution, no rebinding window).
 */
import dns from 'node:dns/promises';
import { ProxyError, errnoOf } from '../../shared/errors/index.js';
import { canonicalHost } from '../../shared/egress/destination.js';
import { IPV4_LOOPBACK, parseIPv4Strict, parseIPv6, unmapIp, type IpAddress } from '../../shared/egress/ip.js';
import { PARENT_HOST } from '../../shared/egress/policy.js';
import type { HostsMap } from './hosts-file.js';

export interface Resolved {
  addresses: IpAddress[];
  /** From the operator's hosts file: exempt from the private-address guard. */
  trusted: boolean;
}

export class ResolveError extends ProxyError {
  constructor(host: string, errno: string | undefined) {
    super('resolve_failed', `cannot resolve ${host}${errno ? ` (${errno})` : ''}`, { host, errno });
  }
}

export class Resolver {
  constructor(
    private readonly hosts: HostsMap = new Map(),
    private readonly lookup: typeof dns.lookup = dns.lookup,
  ) {}

  async resolve(host: string): Promise<Resolved> {
    const canonical = canonicalHost(host);
    if (canonical.kind === 'ip') return { addresses: [canonical.ip], trusted: false };
    const fromFile = this.hosts.get(canonical.text);
    if (fromFile) return { addresses: [...fromFile], trusted: true };
    // Enclaver's `host`: this instance. Not trusted: the enclave's policy must allow it by name
    // (the inner then sends 127.0.0.1/32 as an explicit range), or the guard refuses it.
    if (canonical.text === PARENT_HOST) return { addresses: [IPV4_LOOPBACK], trusted: false };
    let answers: { address: string }[];
    try {
      answers = await this.lookup(canonical.text, { all: true, verbatim: true });
    } catch (err) {
      throw new ResolveError(canonical.text, errnoOf(err));
    }
    const addresses = answers
      .map((a) => parseIPv4Strict(a.address) ?? parseIPv6(a.address))
      .filter((a): a is IpAddress => a !== null)
      .map(unmapIp);
    if (addresses.length === 0) throw new ResolveError(canonical.text, 'ENODATA');
    return { addresses, trusted: false };
  }
}
