/**
 * Where the config sets each address, for the one message a user reads when it cannot be bound
 * ("listen EADDRINUSE 127.0.0.1:10000" said neither which listener nor what to change). A proxy.yaml
 * sets a listener at `listeners[N].address` (`inner.`/`outer.` under role local); an Enclaver
 * manifest at `egress.proxy_port`, `ingress[N].listen_port` (the outer's through `-p`),
 * `kms_proxy.listen_port` or `api.listen_port`; the admin endpoint at `admin.address` or a flag.
 * Computed after normalizing, from the listener names, so no other part of the config code changes.
 */
import type { Config, SideConfig } from './types.js';

type Side = 'inner' | 'outer' | undefined;

/** The manifest key behind a translated listener (names from enclaver-manifest.ts). */
function manifestKey(name: string, side: Side, data: Record<string, unknown>): string | undefined {
  if (name === 'egress') return 'egress.proxy_port';
  if (name === 'kms-proxy') return 'kms_proxy.listen_port';
  if (name === 'api') return 'api.listen_port';
  const ingress = /^ingress-(\d+)$/.exec(name);
  if (!ingress) return undefined;
  const port = Number(ingress[1]);
  const index = Array.isArray(data.ingress) ? data.ingress.findIndex((i: { listen_port?: unknown }) => i?.listen_port === port) : -1;
  const key = index >= 0 ? `ingress[${index}].listen_port` : 'ingress[].listen_port';
  return side === 'inner' ? key : `-p HOST_PORT:${port} (the host port published for ${key})`;
}

function annotateSide(side: SideConfig, sideName: Side, data: Record<string, unknown>, manifest: boolean, local: boolean): void {
  const prefix = local && sideName ? `${sideName}.` : '';
  const raw = (local && sideName ? (data[sideName] as Record<string, unknown> | undefined) : data) ?? {};
  const rawListeners = Array.isArray(raw.listeners) ? (raw.listeners as { name?: unknown }[]) : [];
  for (const listener of side.listeners) {
    const index = rawListeners.findIndex((l) => l?.name === listener.name);
    const key = manifest ? manifestKey(listener.name, sideName, data) : index >= 0 ? `${prefix}listeners[${index}].address` : undefined;
    if (key) listener.addressKey = key;
  }
  const flag = local && sideName === 'inner' ? '--inner-admin ADDR' : '--admin ADDR';
  side.adminAddressKey = manifest ? flag : `${prefix}admin.address or ${flag}`;
}

/** Fills `addressKey` on every listener and `adminAddressKey` on every side of `config`. */
export function annotateAddressKeys(config: Config, data: unknown, manifest: boolean): void {
  const doc = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  if (config.role === 'local') {
    annotateSide(config.outer, 'outer', doc, manifest, true);
    annotateSide(config.inner, 'inner', doc, manifest, true);
  } else {
    annotateSide(config, config.role, doc, manifest, false);
  }
}
