/**
 * The proxy URLs the app is given for the first egress listener: HTTP(S)_PROXY when it speaks
 * HTTP, ALL_PROXY as socks5h:// when it speaks SOCKS5 (names are then resolved by the outer,
 * never by the app, which has no DNS in an enclave).
 */
import type { InnerConfig, ListenerOf } from '../../shared/config/types.js';
import { formatHostPort, type Address } from '../../shared/transport/address.js';

export interface AppProxyUrls {
  http?: string;
  all?: string;
}

export function appProxyUrls(config: InnerConfig, boundAddress: (listener: string) => Address | undefined): AppProxyUrls {
  const l = config.listeners.find((x): x is ListenerOf<'egress'> => x.kind === 'egress');
  const a = l ? boundAddress(l.name) : undefined;
  if (!l || !a || a.kind !== 'tcp') return {};
  const hostPort = formatHostPort(a.host, a.port);
  const http = l.egress.protocols.includes('http_connect') ? `http://${hostPort}` : undefined;
  const all = l.egress.protocols.includes('socks5') ? `socks5h://${hostPort}` : http;
  return { ...(http ? { http } : {}), ...(all ? { all } : {}) };
}
