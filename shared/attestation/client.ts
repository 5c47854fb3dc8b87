/**
 * Attested TLS for Node apps (the package's `enclaver-proxy/attested-client` export): an undici
 * connector and an `https.Agent` that refuse a connection unless its TLS peer proves, with a fresh
 * attestation document, that it is an enclave with the expected PCRs holding this connection's key.
 *
 *   import { Agent, fetch } from 'undici';
 *   import { attestedConnector } from 'enclaver-proxy/attested-client';
 *   const dispatcher = new Agent({ connect: attestedConnector({ pcrs: new Map([[0, '…']]) }) });
 *   await fetch('https://enclave.example.com/api', { dispatcher });
 *
 * A certificate that carries its own document (`embed_attestation: true` on the listener) is checked
 * as the handshake completes, with no request; otherwise a document is fetched over the connection.
 * The certificate is self-signed (its trust is the attestation), so the usual CA check is off
 * unless `ca` is given. A key once proven is remembered for `reuseMs` (default 10 minutes): a new
 * connection presenting the same key is the same enclave (the handshake proves possession), so it
 * skips the document round trip; any other key is checked afresh.
 */
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { buildConnector } from 'undici';
import {
  type AttestedPeer,
  type AttestedTlsOptions,
  peerCertificate,
  verifyAttestedPeer,
  verifyEmbeddedAttestation,
} from './attested-tls.js';
import { spkiOf, spkiSha256 } from './tls-binding.js';

export {
  verifyAttestedPeer,
  verifyEmbeddedAttestation,
  fetchAttestationDocument,
  type AttestedPeer,
  type AttestedTlsOptions,
} from './attested-tls.js';
export { AttestationError, type AttestationFailure } from './errors.js';

const DEFAULT_REUSE_MS = 10 * 60_000;

export interface AttestedClientOptions extends AttestedTlsOptions {
  /** Extra CA(s) to also require a CA-issued certificate; by default the attestation alone is trusted. */
  ca?: string | Buffer | Array<string | Buffer>;
  reuseMs?: number;
  /** Called once per key proven (for logging what was checked). */
  onVerified?: (peer: AttestedPeer) => void;
}

/** Verified SPKI digests with their expiry, shared by every connection of one connector or agent. */
class ProvenKeys {
  private readonly keys = new Map<string, number>();
  constructor(private readonly reuseMs: number) {}

  has(spki: Buffer): boolean {
    const key = spkiSha256(spki).toString('hex');
    const until = this.keys.get(key);
    if (until !== undefined && until > Date.now()) return true;
    this.keys.delete(key);
    return false;
  }

  add(peer: AttestedPeer): void {
    if (this.reuseMs > 0) this.keys.set(peer.spkiSha256, Date.now() + this.reuseMs);
  }
}

/** The certificate's own document when it carries one (no round trip), else a fresh one from the endpoint. */
async function check(socket: tls.TLSSocket, host: string, opts: AttestedClientOptions, proven: ProvenKeys): Promise<void> {
  const cert = peerCertificate(socket);
  if (proven.has(spkiOf(cert))) return;
  const peer = verifyEmbeddedAttestation(cert, opts) ?? (await verifyAttestedPeer(socket, host, opts, cert));
  proven.add(peer);
  opts.onVerified?.(peer);
}

/** An undici `connect` option: `new Agent({ connect: attestedConnector({ pcrs }) })`. */
export function attestedConnector(opts: AttestedClientOptions): buildConnector.connector {
  const proven = new ProvenKeys(opts.reuseMs ?? DEFAULT_REUSE_MS);
  const base = buildConnector({ rejectUnauthorized: opts.ca !== undefined, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) });
  return (connectOpts, callback) => {
    if (connectOpts.protocol !== 'https:') {
      callback(new Error(`attested TLS needs an https: origin, not ${connectOpts.protocol}`), null);
      return;
    }
    base(connectOpts, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      check(socket as tls.TLSSocket, connectOpts.hostname, opts, proven).then(
        () => callback(null, socket),
        (failure: Error) => {
          socket.destroy();
          callback(failure, null);
        },
      );
    });
  };
}

/** An `https.Agent` for `https.request`/`https.get` (and libraries built on them) with the same check. */
export function attestedHttpsAgent(opts: AttestedClientOptions, agentOptions: https.AgentOptions = {}): https.Agent {
  const proven = new ProvenKeys(opts.reuseMs ?? DEFAULT_REUSE_MS);
  const agent = new https.Agent({ keepAlive: true, ...agentOptions });
  // Node's Agent accepts an asynchronous createConnection: return nothing, call back when ready.
  (
    agent as unknown as {
      createConnection: (o: tls.ConnectionOptions & { host?: string }, cb: (err: Error | null, s?: net.Socket) => void) => undefined;
    }
  ).createConnection = (options, callback) => {
    const socket = tls.connect({
      ...options,
      rejectUnauthorized: opts.ca !== undefined,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    });
    const onError = (err: Error) => callback(err);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      check(socket, options.servername ?? options.host ?? 'localhost', opts, proven).then(
        () => {
          socket.off('error', onError);
          socket.resume();
          callback(null, socket);
        },
        (failure: Error) => {
          socket.off('error', onError);
          socket.destroy();
          callback(failure);
        },
      );
    });
    return undefined;
  };
  return agent;
}
