/**
 * Where the config sets each address, for the one message a user reads when it cannot be bound
 * ("listen EADDRINUSE 127.0.0.1:10000" said neither which listener nor what to change). A proxy.yaml
 * sets a listener at `listeners[N].address` (`inner.`/`outer.` under role local); an Enclaver
 * manifest at `egress.proxy_port`, `ingress[N].listen_port` (the outer's through `-p`),
 * `kms_proxy.listen_port` or `api.listen_port`; the admin endpoint at `admin.address` or a flag.
 * Computed after normalizing, from the listener names, and kept beside the config (a WeakMap keyed by
 * the normalized objects) so that no config type or spec carries it.
 */
import type { Config, ListenerConfig, SideConfig } from './types.js';

const listenerKeys = new WeakMap<object, string>();
const adminKeys = new WeakMap<object, string>();

/** Where the config sets this listener's address (`listeners[2].address`, `egress.proxy_port`, a flag). */
export function addressKeyOf(listener: ListenerConfig | object): string | undefined {
  return listenerKeys.get(listener);
}

/** Where the admin address of this side is set (`admin.address or --admin ADDR`). */
export function adminAddressKeyOf(side: SideConfig | object): string | undefined {
  return adminKeys.get(side);
}

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
    if (key) listenerKeys.set(listener, key);
  }
  const flag = local && sideName === 'inner' ? '--inner-admin ADDR' : '--admin ADDR';
  adminKeys.set(side, manifest ? flag : `${prefix}admin.address or ${flag}`);
}

/** Records where every listener's and every side's admin address of `config` is set. */
export function annotateAddressKeys(config: Config, data: unknown, manifest: boolean): void {
  const doc = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  if (config.role === 'local') {
    annotateSide(config.outer, 'outer', doc, manifest, true);
    annotateSide(config.inner, 'inner', doc, manifest, true);
  } else {
    annotateSide(config, config.role, doc, manifest, false);
  }
}
