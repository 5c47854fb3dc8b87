/**
 * The verifying side of attested TLS: is the TLS peer on this connection the enclave we expect?
 *
 * Over the very connection being checked, ask for a document with a fresh random nonce
 * (`GET /.well-known/enclave-attestation?nonce=…`), then require, in this order: the document
 * verifies (signature, chain to the pinned root, validity — the existing verifier), its PCRs are the
 * expected ones, its nonce is ours (not a replay), and its `user_data` binds this connection's
 * certificate key (not a man in the middle's). Only the enclave holds that key's private half, and
 * the TLS handshake just proved the peer holds it.
 *
 * When the certificate itself carries a document (`embed_attestation`), it is checked first and the
 * same way, minus the nonce (verifyEmbeddedAttestation): no request at all.
 *
 * The request is written by hand (one GET, a Content-Length body) so that the socket can be handed
 * on afterwards to undici or https with nothing consumed past the response.
 */
import crypto from 'node:crypto';
import type tls from 'node:tls';
import type { AttestationDocument } from './document.js';
import { embeddedAttestation } from './embedded.js';
import { AttestationError } from './errors.js';
import { ATTESTATION_WELL_KNOWN_PATH, checkTlsBinding, spkiOf, spkiSha256 } from './tls-binding.js';
import { type ValidityInstant, verifyAttestation } from './verify.js';

const MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface AttestedTlsOptions {
  /** PCR index → expected value (hex or bytes). At least one is needed for the check to mean anything. */
  pcrs: Map<number, Buffer | string>;
  /** PEM or DER of the trusted root; the AWS Nitro G1 root by default. */
  root?: string | Buffer;
  /** The instant certificates must be valid at (default: the document's own timestamp). */
  at?: ValidityInstant;
  timeoutMs?: number;
}

export interface AttestedPeer {
  document: AttestationDocument;
  /** SHA-256 of the peer certificate's SPKI, hex. */
  spkiSha256: string;
  /** Where the document came from: the peer's certificate (no round trip) or the endpoint (a fresh nonce). */
  evidence: 'certificate' | 'endpoint';
}

function fetchFailed(message: string, context: Record<string, unknown> = {}): AttestationError {
  return new AttestationError('fetch_failed', message, context);
}

/** One GET over an established TLS socket; resolves with the body of a 200. */
export function fetchAttestationDocument(
  socket: tls.TLSSocket,
  host: string,
  nonce: Buffer,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let bodyStart = -1;
    let length = -1;
    let status = 0;
    const stop = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.pause();
    };
    const fail = (err: Error) => {
      stop();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_RESPONSE_BYTES) return fail(fetchFailed(`the attestation response exceeds ${MAX_RESPONSE_BYTES} bytes`));
      if (bodyStart < 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
        if (!m) return fail(fetchFailed('the server did not answer HTTP/1.1'));
        status = Number(m[1]);
        const cl = head.map((l) => /^content-length:\s*(\d+)\s*$/i.exec(l)).find((x) => x);
        if (!cl) return fail(fetchFailed(`the attestation response (status ${status}) has no Content-Length`, { status }));
        length = Number(cl[1]);
        bodyStart = end + 4;
      }
      if (buf.length < bodyStart + length) return;
      const body = buf.subarray(bodyStart, bodyStart + length);
      const extra = buf.subarray(bodyStart + length);
      if (extra.length > 0) return fail(fetchFailed('the server sent bytes after the attestation response'));
      if (status !== 200)
        return fail(
          fetchFailed(`GET ${ATTESTATION_WELL_KNOWN_PATH} answered ${status}: ${body.toString('utf8').slice(0, 200)}`, { status }),
        );
      stop();
      resolve(Buffer.from(body));
    };
    const onError = (err: Error) => fail(fetchFailed(`the connection failed while fetching the attestation: ${err.message}`));
    const onEnd = () => fail(fetchFailed('the server closed the connection before the attestation response was complete'));
    const timer = setTimeout(() => fail(fetchFailed(`no attestation response within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.write(
      `GET ${ATTESTATION_WELL_KNOWN_PATH}?nonce=${nonce.toString('hex')} HTTP/1.1\r\nhost: ${host}\r\naccept: application/cbor\r\n\r\n`,
    );
    socket.resume();
  });
}

/**
 * The connection's peer certificate. Ask once per socket: Node 20 answers
 * getPeerX509Certificate() only the first time it is called on a client socket.
 */
export function peerCertificate(socket: tls.TLSSocket): crypto.X509Certificate {
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw fetchFailed('the TLS peer presented no certificate');
  return cert;
}

/**
 * A document carried in a certificate has no nonce of ours: its freshness is its signing chain's
 * validity (hours), so it is checked at the present instant, not at its own timestamp.
 */
function embeddedInstant(at: ValidityInstant | undefined): ValidityInstant {
  return at === undefined || at === 'document' ? 'now' : at;
}

/**
 * Checks the document the peer's certificate carries (`embed_attestation`), with no round trip:
 * it verifies, has the expected PCRs, and binds this very certificate's key. Undefined when the
 * certificate carries none (the caller then asks the endpoint).
 */
export function verifyEmbeddedAttestation(cert: crypto.X509Certificate, opts: AttestedTlsOptions): AttestedPeer | undefined {
  const bytes = embeddedAttestation(cert.raw);
  if (!bytes) return undefined;
  const spki = spkiOf(cert);
  const { document } = verifyAttestation(bytes, {
    expectedPcrs: opts.pcrs,
    at: embeddedInstant(opts.at),
    ...(opts.root ? { root: opts.root } : {}),
  });
  checkTlsBinding(document, spki);
  return { document, spkiSha256: spkiSha256(spki).toString('hex'), evidence: 'certificate' };
}

/**
 * Checks the peer of an established TLS connection with a fresh document from its endpoint;
 * rejects with an AttestationError naming the failure. `cert` is the peer's certificate if the
 * caller already read it (see peerCertificate).
 */
export async function verifyAttestedPeer(
  socket: tls.TLSSocket,
  host: string,
  opts: AttestedTlsOptions,
  cert = peerCertificate(socket),
): Promise<AttestedPeer> {
  const spki = spkiOf(cert);
  const nonce = crypto.randomBytes(32);
  const bytes = await fetchAttestationDocument(socket, host, nonce, opts.timeoutMs);
  const { document } = verifyAttestation(bytes, {
    expectedPcrs: opts.pcrs,
    expectedNonce: nonce,
    at: opts.at ?? 'document',
    ...(opts.root ? { root: opts.root } : {}),
  });
  checkTlsBinding(document, spki);
  return { document, spkiSha256: spkiSha256(spki).toString('hex'), evidence: 'endpoint' };
}
