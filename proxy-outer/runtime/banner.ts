/**
 * The first lines a developer sees from `npm start`: where the app answers through the pair,
 * and where the app's egress proxy is. Written to stderr so stdout stays pure log lines.
 */
import type { ListenerConfig, ListenerOf, LocalConfig } from '../../shared/config/types.js';
import { formatAddress, formatHostPort, type Address } from '../../shared/transport/address.js';

function url(a: Address, tls: boolean): string {
  if (a.kind !== 'tcp') return formatAddress(a);
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host;
  return `${tls ? 'https' : 'http'}://${formatHostPort(host, a.port)}/`;
}

export function bannerLines(config: LocalConfig): string[] {
  const lines = ['enclaver-proxy local pair: outer proxy here, inner proxy + app in an emulated enclave'];
  for (const l of config.outer.listeners) {
    const vsock = l.cluster.endpoints.find((e) => e.kind === 'vsock');
    const inner =
      vsock &&
      config.inner.listeners.find(
        (il): il is ListenerOf<'tcp_proxy'> | ListenerOf<'http'> =>
          (il.kind === 'tcp_proxy' || il.kind === 'http') && il.address.kind === 'vsock' && il.address.port === vsock.port,
      );
    const app = inner?.kind === 'http' ? inner.http.defaultCluster?.endpoints[0] : inner?.cluster.endpoints[0];
    const http =
      inner?.kind === 'http'
        ? `HTTP (${inner.http.routes.length} route${inner.http.routes.length === 1 ? '' : 's'}${app ? ', default' : ''})`
        : undefined;
    const tls =
      inner?.tls?.source === 'attested' ? 'attested TLS in the enclave' : inner?.tls ? 'TLS terminated in the enclave' : undefined;
    const chain = [
      vsock ? `vsock ${vsock.kind === 'vsock' ? `${vsock.cid}:${vsock.port}` : ''}` : undefined,
      tls,
      http,
      app ? `app ${formatAddress(app)}` : undefined,
    ].filter(Boolean);
    lines.push(`  ingress "${l.name}": ${url(l.address, inner?.tls !== undefined)}${chain.length ? `  ->  ${chain.join('  ->  ')}` : ''}`);
  }
  const egress = config.inner.listeners.find((l): l is ListenerOf<'egress'> => l.kind === 'egress');
  if (egress) {
    const rules = egress.egress.policy.allow.length;
    lines.push(
      `  egress proxy for the app: ${url(egress.address, false)} (${egress.egress.protocols.join(', ')}; ${rules} allow ${rules === 1 ? 'entry' : 'entries'}, default deny)`,
    );
  } else {
    lines.push('  egress proxy for the app: none configured (add an egress listener to the inner side)');
  }
  const awsKinds: Partial<Record<ListenerConfig['kind'], string>> = { kms: 'KMS proxy', imds: 'IMDS', attestation_api: 'attestation API' };
  const aws = config.inner.listeners.flatMap((l) => {
    const what = awsKinds[l.kind];
    return what ? [`${what} ${url(l.address, false)}`] : [];
  });
  if (aws.length)
    lines.push(
      `  AWS for the app: ${aws.join('  ')}${config.outer.imdsRelay ? `  (credentials relayed from ${config.outer.imdsRelay.upstream})` : ''}`,
    );
  const admins = (
    [
      ['outer', config.outer.admin.address],
      ['inner', config.inner.admin.address],
    ] as const
  ).flatMap(([side, a]) => (a ? [`${side} ${url(a, false)}metrics`] : []));
  if (admins.length) lines.push(`  admin: ${admins.join('  ')}`);
  return lines;
}

export function printBanner(config: LocalConfig): void {
  process.stderr.write(`${bannerLines(config).join('\n')}\n\n`);
}
