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
  tls?: { certificate: string; privateKey: string };
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

export interface SideConfig {
  role: Role;
  /** The file the config came from (for messages), or a description such as "enclaver.yaml (inner)". */
  source: string;
  logLevel: string | undefined;
  admin: Address | null;
  vsock: { emulationDir: string | undefined; cid: number | undefined };
  drainTimeoutMs: number;
  listeners: ListenerConfig[];
  clusters: Map<string, ClusterConfig>;
  app: AppConfig | undefined;
  /** Outer: the egress relay on vsock port 17002, when configured. */
  egressRelay: EgressRelayConfig | undefined;
  /** Audit stream settings, when configured (the outer collects whenever it relays egress). */
  audit: AuditConfig | undefined;
  enclave: { cid: number; exitWithApp: boolean };
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
