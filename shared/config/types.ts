/**
 * The normalized config: what the rest of the code reads. Defaults applied, addresses parsed,
 * references resolved. The types come from the section specs; this file names them, read-only
 * all the way down (`DeepReadonly`): a module is handed its slice of one config shared by all,
 * so a write to it is a compile error here, and a TypeError at run time (load.ts freezes it).
 */
import type { ClusterConfig as ClusterSpecConfig } from './clusters.js';
import type * as Egress from './egress.js';
import type * as Listeners from './listeners.js';
import type { LogLevel } from './schema.js';
import type * as Side from './side.js';
import type { DeepReadonly } from './spec.js';

export type { Role } from './spec.js';

export type ClusterConfig = DeepReadonly<ClusterSpecConfig>;
export type EgressListenerConfig = DeepReadonly<Egress.EgressListenerConfig>;
export type EgressRelayConfig = DeepReadonly<Egress.EgressRelayConfig>;
export type InnerAuditConfig = DeepReadonly<Egress.InnerAuditConfig>;
export type OuterAuditConfig = DeepReadonly<Egress.OuterAuditConfig>;
export type UpstreamProxyUrl = DeepReadonly<Egress.UpstreamProxyUrl>;
export type KmsEndpointConfig = DeepReadonly<Listeners.KmsEndpointConfig>;
export type KmsListenerConfig = DeepReadonly<Listeners.KmsListenerConfig>;
export type ListenerConfig = DeepReadonly<Listeners.ListenerConfig>;
export type ListenerKind = Listeners.ListenerKind;
export type ListenerOf<K extends ListenerKind> = Extract<ListenerConfig, { kind: K }>;
export type TlsConfig = DeepReadonly<Listeners.TlsConfig>;
export type TlsPrivateKey = DeepReadonly<Listeners.TlsPrivateKey>;
export type InnerConfig = DeepReadonly<Side.InnerConfig>;
export type OuterConfig = DeepReadonly<Side.OuterConfig>;
export type InnerListenerConfig = DeepReadonly<Side.InnerListenerConfig>;
export type OuterListenerConfig = DeepReadonly<Side.OuterListenerConfig>;
export type SideConfig = InnerConfig | OuterConfig;

export type AppConfig = NonNullable<InnerConfig['app']>;
export type NsmConfig = InnerConfig['nsm'];
export type ImdsRelayConfig = NonNullable<OuterConfig['imdsRelay']>;
export type BootstrapConfig = InnerConfig['bootstrap'];
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
