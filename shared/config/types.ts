/**
 * The normalized config: what the rest of the code reads. Defaults applied, addresses parsed,
 * references resolved. The types come from the section specs; this file names them, read-only
 * all the way down (`DeepReadonly`): every module is handed a slice of one config shared by all,
 * so a write to a slice is a compile error, and a TypeError at run time (load.ts freezes it).
 * Each name below is a slice of the two sides' types, so none of them can miss the read-only.
 */
import type { UpstreamProxyUrl as UpstreamProxyUrlSpec } from './egress.js';
import type { KmsEndpointConfig as KmsEndpointSpec } from './listeners.js';
import type { LogLevel } from './schema.js';
import type { InnerConfig as InnerSpec, OuterConfig as OuterSpec } from './side.js';
import type { DeepReadonly } from './spec.js';

export type { Role } from './spec.js';

export type InnerConfig = DeepReadonly<InnerSpec>;
export type OuterConfig = DeepReadonly<OuterSpec>;
export type SideConfig = InnerConfig | OuterConfig;

/** The inner has every listener kind; the outer only TCP proxies. */
export type ListenerConfig = InnerConfig['listeners'][number];
export type InnerListenerConfig = ListenerConfig;
export type OuterListenerConfig = OuterConfig['listeners'][number];
export type ListenerKind = ListenerConfig['kind'];
export type ListenerOf<K extends ListenerKind> = Extract<ListenerConfig, { kind: K }>;
export type ClusterConfig = ListenerOf<'tcp_proxy'>['cluster'];
export type TlsConfig = NonNullable<ListenerOf<'tcp_proxy'>['tls']>;
export type TlsPrivateKey = Extract<TlsConfig, { source: 'files' }>['privateKey'];
export type EgressListenerConfig = ListenerOf<'egress'>['egress'];
export type KmsListenerConfig = ListenerOf<'kms'>['kms'];
/** The KMS endpoint fields a KMS listener and a sealed TLS key share. */
export type KmsEndpointConfig = DeepReadonly<KmsEndpointSpec>;

export type AppConfig = NonNullable<InnerConfig['app']>;
export type NsmConfig = InnerConfig['nsm'];
export type BootstrapConfig = InnerConfig['bootstrap'];
export type InnerAuditConfig = InnerConfig['audit'];
export type OuterAuditConfig = NonNullable<OuterConfig['audit']>;
export type EgressRelayConfig = NonNullable<OuterConfig['egressRelay']>;
export type UpstreamProxyUrl = DeepReadonly<UpstreamProxyUrlSpec>;
export type ImdsRelayConfig = NonNullable<OuterConfig['imdsRelay']>;
/** `nitro-cli run-enclave` settings of an outer that launches its enclave (`enclave.eif`). */
export type EnclaveLaunchConfig = NonNullable<OuterConfig['enclave']['launch']>;

/** A config as the process runs it: one side, or both (role local). */
export interface LocalConfig {
  readonly role: 'local';
  readonly source: string;
  readonly logLevel: LogLevel | undefined;
  readonly runtimeDir: string | undefined;
  readonly outer: OuterConfig;
  readonly inner: InnerConfig;
}

export type Config = ((InnerConfig | OuterConfig) & { readonly logLevel: LogLevel | undefined }) | LocalConfig;
