/**
 * The first lines a developer sees from `npm start`: where the app answers through the pair,
 * and where the app's egress proxy is. Written to stderr so stdout stays pure log lines.
 */
import type { LocalConfig } from '../../shared/config/types.js';
import { formatAddress, type Address } from '../../shared/transport/address.js';

function url(a: Address, tls: boolean): string {
  if (a.kind !== 'tcp') return formatAddress(a);
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${tls ? 'https' : 'http'}://${host}:${a.port}/`;
}

export function bannerLines(config: LocalConfig): string[] {
  const lines = ['enclaver-proxy local pair: outer proxy here, inner proxy + app in an emulated enclave'];
  for (const l of config.outer.listeners) {
    const cluster = l.cluster ? config.outer.clusters.get(l.cluster) : undefined;
    const vsock = cluster?.endpoints.find((e) => e.kind === 'vsock');
    const inner = vsock && config.inner.listeners.find((il) => il.address.kind === 'vsock' && il.address.port === vsock.port);
    const app = inner?.cluster ? config.inner.clusters.get(inner.cluster)?.endpoints[0] : undefined;
    const chain = [vsock ? `vsock ${vsock.kind === 'vsock' ? `${vsock.cid}:${vsock.port}` : ''}` : undefined, inner?.tls ? 'TLS terminated in the enclave' : undefined, app ? `app ${formatAddress(app)}` : undefined].filter(Boolean);
    lines.push(`  ingress "${l.name}": ${url(l.address, inner?.tls !== undefined)}${chain.length ? `  ->  ${chain.join('  ->  ')}` : ''}`);
  }
  lines.push('  egress proxy for the app: none configured (add an egress listener to the inner side)');
  const aws = config.inner.listeners.filter((l) => l.kms || l.imds || l.attestationApi)
    .map((l) => `${l.kms ? 'KMS proxy' : l.imds ? 'IMDS' : 'attestation API'} ${url(l.address, false)}`);
  if (aws.length) lines.push(`  AWS for the app: ${aws.join('  ')}${config.outer.imdsRelay ? `  (credentials relayed from ${config.outer.imdsRelay.upstream})` : ''}`);
  const admins = [['outer', config.outer.admin], ['inner', config.inner.admin]].filter(([, a]) => a).map(([side, a]) => `${side} ${url(a as Address, false)}metrics`);
  if (admins.length) lines.push(`  admin: ${admins.join('  ')}`);
  return lines;
}

export function printBanner(config: LocalConfig): void {
  process.stderr.write(`${bannerLines(config).join('\n')}\n\n`);
}
