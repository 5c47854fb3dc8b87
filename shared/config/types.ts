/** The normalized config: what the rest of the code reads. Defaults applied, addresses parsed. */
import type { Address } from '../transport/address.js';

export type Role = 'inner' | 'outer';

export interface ListenerConfig {
  name: string;
  address: Address;
  /** TCP proxy kind: the cluster connections are forwarded to. */
  cluster?: string;
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
