/** The normalized config: what the rest of the code reads. Defaults applied, addresses parsed. */
import type { Address } from '../transport/address.js';
import type { AuditConfig, EgressListenerConfig, EgressRelayConfig } from './egress.js';

export type Role = 'inner' | 'outer';

export interface ListenerConfig {
  name: string;
  address: Address;
  /** TCP proxy kind: the cluster connections are forwarded to. */
  cluster?: string;
  /** Egress proxy kind (inner). */
  egress?: EgressListenerConfig;
  expectProxyProtocol: boolean;
  maxConnections: number;
  idleTimeoutMs: number;
  accessLog: boolean;
  tls?: { certificate: string; privateKey: TlsPrivateKey };
  kms?: KmsListenerConfig;
  imds?: Record<string, never>;
  attestationApi?: Record<string, never>;
}

/** A PEM file, or a key sealed with KMS and decrypted inside the enclave at startup. */
export type TlsPrivateKey = { file: string } | { kmsCiphertext: string; kms: KmsListenerConfig };

export interface KmsListenerConfig {
  endpoint: string | undefined;
  /** region → endpoint URL. */
  endpoints: Record<string, string>;
  egressProxy: string | undefined;
  caFile: string | undefined;
  attestationReuseMs: number;
  maxBodyBytes: number;
}

export interface NsmConfig {
  mode: 'auto' | 'device' | 'simulator';
  /** PCR index → 48 bytes. */
  simulatorPcrs: Map<number, Buffer>;
  simulatorRootCertificatePath: string | undefined;
}

export interface AwsConfig {
  region: string | undefined;
  credentialRefreshMarginMs: number;
}

export interface ImdsRelayConfig {
  upstream: string;
  tokenTtlSeconds: number;
  timeoutMs: number;
}

export interface ClusterConfig {
  name: string;
  endpoints: Address[];
  connectTimeoutMs: number;
  sendProxyProtocol: boolean;
}

export interface AppConfig {
  /** argv; a string command becomes ['/bin/sh', '-c', command]. */
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  stopTimeoutMs: number;
}

/** Inner: what the inner does as the enclave's entrypoint (proxy-inner/bootstrap/). */
export interface BootstrapConfig {
  /** auto: when PID 1 or /dev/nsm exists. */
  mode: 'auto' | 'on' | 'off';
  /** 0: no clock sync. */
  clockSyncIntervalMs: number;
  clockMaxStepMs: number;
}

/** `nitro-cli run-enclave` settings of an outer that launches its enclave. */
export interface EnclaveLaunchConfig {
  eif: string;
  cpuCount: number;
  memoryMib: number;
  debugMode: boolean;
  readyTimeoutMs: number;
  watchIntervalMs: number;
}

export interface SideConfig {
  role: Role;
  /** The file the config came from (for messages), or a description such as "enclaver.yaml (inner)". */
  source: string;
  logLevel: string | undefined;
  admin: Address | null;
  /** parentCid: the CID the inner dials for the pair's channels; undefined = environment, else 3. */
  vsock: { emulationDir: string | undefined; cid: number | undefined; parentCid: number | undefined };
  drainTimeoutMs: number;
  /** Inner: forward log lines to the outer; undefined = decide by transport (real vsock: yes). */
  logs: { forward: boolean | undefined; bufferBytes: number };
  listeners: ListenerConfig[];
  clusters: Map<string, ClusterConfig>;
  app: AppConfig | undefined;
  /** Outer: the egress relay on vsock port 17002, when configured. */
  egressRelay: EgressRelayConfig | undefined;
  /** Audit stream settings, when configured (the outer collects whenever it relays egress). */
  audit: AuditConfig | undefined;
  /** Outer: the enclave's CID; `launch` when this outer starts and supervises it (`enclave.eif`). */
  enclave: { cid: number; exitWithApp: boolean; launch: EnclaveLaunchConfig | undefined };
  nsm: NsmConfig;
  bootstrap: BootstrapConfig;
  aws: AwsConfig;
  /** Outer: the IMDS relay on vsock port 17004, when enabled. */
  imdsRelay: ImdsRelayConfig | undefined;
}

export interface LocalConfig {
  role: 'local';
  source: string;
  logLevel: string | undefined;
  runtimeDir: string | undefined;
  outer: SideConfig;
  inner: SideConfig;
}

export type Config = SideConfig | LocalConfig;
