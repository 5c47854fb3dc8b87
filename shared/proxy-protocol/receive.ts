/**
 * The receiving side of PROXY v2 on an accepted connection, shared by every listener kind that
 * expects one (the TCP proxy on both sides, the inner's HTTP ingress): one deadline, one size
 * bound and one set of errors (`proxy_header_missing`, `prefix_timeout`, …), whichever listener
 * the outer's connection arrives on.
 */
import type net from 'node:net';
import { readPrefix } from '../util/read-prefix.js';
import { MAX_HEADER_BYTES, parseProxyHeader, type Endpoint } from './v2.js';

/** The outer writes the header first thing; a connection that does not is stuck or hostile. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

export interface ReceivedProxyHeader {
  /** The real client and the address it connected to, when the sender relayed a TCP connection. */
  addresses: { source: Endpoint; destination: Endpoint } | undefined;
  /** Bytes read past the header: the start of the client's own stream, to be handed on first. */
  rest: Buffer;
}

/** Reads the header off the front of `socket`; rejects (ProxyProtocolError, PrefixError) on anything else. */
export async function receiveProxyHeader(socket: net.Socket): Promise<ReceivedProxyHeader> {
  const { value, rest } = await readPrefix(socket, parseProxyHeader, {
    timeoutMs: PROXY_HEADER_TIMEOUT_MS,
    maxBytes: MAX_HEADER_BYTES,
    what: 'PROXY v2 header',
  });
  return { addresses: 'source' in value ? { source: value.source, destination: value.destination } : undefined, rest };
}
