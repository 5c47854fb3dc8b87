/** What every protocol handler of one egress listener needs, built once per listener. */
import type { EgressProto } from '../../shared/audit/record.js';
import type { AuditSink } from './attempt.js';
import type { UpstreamContext } from './open-upstream.js';

export interface EgressContext {
  listener: string;
  protocols: ReadonlySet<EgressProto>;
  upstream: UpstreamContext;
  audit: AuditSink;
  /** Peek each tunnel's TLS ClientHello and refuse an SNI other than the CONNECT/SOCKS host. */
  requireSniMatch: boolean;
  /** Deadline for a client's handshake (request line and headers, SOCKS greeting, ClientHello). */
  handshakeTimeoutMs: number;
  /** Close a tunnel after this long without traffic (0: never). */
  idleTimeoutMs: number;
}
