/**
 * Address URIs: `tcp://HOST:PORT`, `unix:///ABS/PATH`, `vsock://CID:PORT`.
 *
 * One parser for config, CLI flags and tests, so an address means the same thing everywhere.
 */
import net from 'node:net';
import { AddressError } from '../errors/index.js';

/** VMADDR_CID_ANY: listen on every CID this machine has. */
export const VSOCK_CID_ANY = 0xffffffff;
/** VMADDR_CID_LOCAL: the loopback transport (used by tests where the kernel provides it). */
export const VSOCK_CID_LOCAL = 1;
/** VMADDR_CID_HOST: the hypervisor host. Never dialled by tests (it belongs to the VM host). */
export const VSOCK_CID_HOST = 2;
/** The parent instance as seen from a Nitro enclave. */
export const VSOCK_CID_PARENT = 3;

export type Address =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string } | { kind: 'vsock'; cid: number; port: number };

const CID_NAMES: Record<string, number> = { any: VSOCK_CID_ANY, local: VSOCK_CID_LOCAL, host: VSOCK_CID_HOST, parent: VSOCK_CID_PARENT };

function parsePort(input: string, text: string, { allowZero }: { allowZero: boolean }): number {
  if (!/^[0-9]{1,10}$/.test(text)) throw new AddressError(input, `port "${text}" is not a number`);
  const port = Number(text);
  const max = 0xffffffff;
  if (port > max) throw new AddressError(input, `port ${text} is out of range`);
  if (port === 0 && !allowZero) throw new AddressError(input, 'port 0 is not allowed here');
  return port;
}

export function parseAddress(input: string): Address {
  if (typeof input !== 'string' || input.length === 0) throw new AddressError(String(input), 'empty address');
  if (/[\s\0]/.test(input)) throw new AddressError(input, 'addresses may not contain whitespace or NUL');
  const m = /^([a-z]+):\/\/(.*)$/.exec(input);
  if (!m) throw new AddressError(input, 'expected a URI such as tcp://127.0.0.1:8080, unix:///run/app.sock or vsock://16:5000');
  const [, scheme, rest = ''] = m;
  switch (scheme) {
    case 'tcp': {
      const hp = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/]+)):([0-9]+)$/.exec(rest);
      if (!hp) throw new AddressError(input, 'expected tcp://HOST:PORT (IPv6 in brackets: tcp://[::1]:8080)');
      const [, ipv6, name, portText = ''] = hp;
      const host = ipv6 ?? name ?? '';
      if (ipv6 !== undefined && net.isIPv6(host) === false) throw new AddressError(input, `"${host}" is not an IPv6 address`);
      if (name !== undefined && !net.isIPv4(host) && !/^[a-zA-Z0-9.-]+$/.test(host))
        throw new AddressError(input, `"${host}" is not a valid host`);
      const port = parsePort(input, portText, { allowZero: true });
      if (port > 65535) throw new AddressError(input, `TCP port ${port} is out of range (0-65535)`);
      return { kind: 'tcp', host, port };
    }
    case 'unix': {
      if (!rest.startsWith('/')) throw new AddressError(input, 'expected an absolute path: unix:///path/to.sock');
      if (Buffer.byteLength(rest) > 107) throw new AddressError(input, 'Unix socket paths are limited to 107 bytes');
      return { kind: 'unix', path: rest };
    }
    case 'vsock': {
      const cp = /^([a-z]+|[0-9]+):([0-9]+)$/.exec(rest);
      if (!cp) throw new AddressError(input, 'expected vsock://CID:PORT where CID is a number, any, parent, host or local');
      const [, cidText = '', portText = ''] = cp;
      let cid: number;
      if (/^[0-9]+$/.test(cidText)) {
        cid = Number(cidText);
        if (cid > 0xffffffff) throw new AddressError(input, `CID ${cidText} is out of range`);
      } else {
        const named = CID_NAMES[cidText];
        if (named === undefined) throw new AddressError(input, `unknown CID name "${cidText}" (any, parent, host or local)`);
        cid = named;
      }
      const port = parsePort(input, portText, { allowZero: false });
      if (port === 0xffffffff) throw new AddressError(input, 'port VMADDR_PORT_ANY is not allowed here');
      return { kind: 'vsock', cid, port };
    }
    default:
      throw new AddressError(input, `unknown scheme "${scheme}" (tcp, unix or vsock)`);
  }
}

/** A host as it appears before `:PORT` in a URI or authority: IPv6 addresses in brackets. */
export function uriHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** `HOST:PORT`, or `[IPV6]:PORT`: the one place this form is written. */
export function formatHostPort(host: string, port: number): string {
  return `${uriHost(host)}:${port}`;
}

export function formatAddress(a: Address): string {
  switch (a.kind) {
    case 'tcp':
      return `tcp://${formatHostPort(a.host, a.port)}`;
    case 'unix':
      return `unix://${a.path}`;
    case 'vsock': {
      const name = a.cid === VSOCK_CID_ANY ? 'any' : String(a.cid);
      return `vsock://${name}:${a.port}`;
    }
  }
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
