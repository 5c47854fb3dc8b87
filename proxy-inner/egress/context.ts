/**
 * What every protocol handler of one egress listener needs: the listener's normalised config
 * slice as it is, plus the two things from outside the config (where the relay is, where audit
 * records go). Built once per listener; per-connection state lives in EgressConnection.
 */
import type { EgressProto } from '../../shared/audit/record.js';
import type { EgressListenerConfig } from '../../shared/config/types.js';
import type { Address } from '../../shared/transport/index.js';
import type { AuditSink } from './attempt.js';

/** The part of a listener's config the egress kind reads. */
export interface EgressListenerSlice {
  name: string;
  /** Close a tunnel after this long without traffic (0: never). */
  idleTimeoutMs: number;
  egress: EgressListenerConfig;
}

export interface EgressDeps {
  /** The outer relay (vsock://parent:17002 in production). */
  relay: Address;
  audit: AuditSink;
}

export interface EgressContext {
  listener: EgressListenerSlice;
  deps: EgressDeps;
  /** `listener.egress.protocols` as a set, for the per-connection checks. */
  protocols: ReadonlySet<EgressProto>;
}

export function egressContext(listener: EgressListenerSlice, deps: EgressDeps): EgressContext {
  return { listener, deps, protocols: new Set(listener.egress.protocols) };
}
