/**
 * The normalized config: what the rest of the code reads. Defaults applied, addresses parsed,
 * references resolved. The types come from the section specs; this file only names them.
 */
import type { LogLevel } from './schema.js';
import type { InnerConfig, OuterConfig } from './side.js';

export type { ClusterConfig } from './clusters.js';
export type { EgressListenerConfig, EgressRelayConfig, InnerAuditConfig, OuterAuditConfig, UpstreamProxyUrl } from './egress.js';
export type {
  KmsEndpointConfig,
  KmsListenerConfig,
  ListenerConfig,
  ListenerKind,
  ListenerOf,
  TlsConfig,
  TlsPrivateKey,
} from './listeners.js';
export type { InnerConfig, InnerListenerConfig, OuterConfig, OuterListenerConfig, SideConfig } from './side.js';
export type { Role } from './spec.js';

export type AppConfig = NonNullable<InnerConfig['app']>;
export type NsmConfig = InnerConfig['nsm'];
export type ImdsRelayConfig = NonNullable<OuterConfig['imdsRelay']>;
export type BootstrapConfig = InnerConfig['bootstrap'];
/** `nitro-cli run-enclave` settings of an outer that launches its enclave (`enclave.eif`). */
export type EnclaveLaunchConfig = NonNullable<OuterConfig['enclave']['launch']>;

/** A config as the process runs it: one side, or both (role local). */
export interface LocalConfig {
  role: 'local';
  source: string;
  logLevel: LogLevel | undefined;
  runtimeDir: string | undefined;
  outer: OuterConfig;
  inner: InnerConfig;
}

export type Config = ((InnerConfig | OuterConfig) & { logLevel: LogLevel | undefined }) | LocalConfig;
