/**
 * A hosts file (`/etc/hosts` format: `ADDRESS NAME [ALIAS…]`, `#` comments) given to the relay
 * with `--hosts FILE`. Its entries are the operator's own statements about where a name lives,
 * so the private-address guard trusts them (that is how a name can lead to a VPC-internal host).
 */
import fs from 'node:fs';
import { ConfigError } from '../../shared/errors/index.js';
import { canonicalHost } from '../../shared/egress/destination.js';
import { parseIPv4Strict, parseIPv6, unmapIp, type IpAddress } from '../../shared/egress/ip.js';

export type HostsMap = ReadonlyMap<string, readonly IpAddress[]>;

export function parseHosts(text: string, file: string): HostsMap {
  const map = new Map<string, IpAddress[]>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    // A line that is not blank after trimming splits into at least one field.
    const [addrText = line, ...names] = line.split(/\s+/);
    const ip = parseIPv4Strict(addrText) ?? parseIPv6(addrText);
    const problem = (message: string) => new ConfigError([{ file, line: i + 1, path: '', message }]);
    if (!ip) throw problem(`"${addrText}" is not an IP address`);
    if (names.length === 0) throw problem('an address needs at least one name');
    for (const n of names) {
      let host;
      try {
        host = canonicalHost(n);
      } catch {
        throw problem(`"${n}" is not a valid hostname`);
      }
      if (host.kind !== 'name') throw problem(`"${n}" is an address, not a name`);
      const list = map.get(host.text) ?? [];
      list.push(unmapIp(ip));
      map.set(host.text, list);
    }
  });
  return map;
}

export function loadHostsFile(file: string): HostsMap {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `cannot read hosts file: ${(err as Error).message}` }]);
  }
  return parseHosts(text, file);
}
