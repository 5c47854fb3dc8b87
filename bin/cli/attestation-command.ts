/**
 * `enclaver-proxy attestation verify FILE [--root PEM] [--at document|now|ISO] [--pcr N=HEX …]
 * [--nonce HEX]`: verify a Nitro attestation document (raw CBOR or base64) and print what it
 * attests. Exit 0 when it verifies, 1 with the named failure when it does not, 2 on usage errors.
 *
 * `enclaver-proxy attestation check https://HOST[:PORT] --pcr N=HEX … [--root PEM]`: the same
 * verdict for a live attested-TLS listener: connect, fetch a fresh document over that connection,
 * verify it, and require that it binds this connection's TLS key (shared/attestation/attested-tls.ts);
 * a document the certificate itself carries (`embed_attestation`) is verified too.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { peerCertificate, verifyAttestedPeer, verifyEmbeddedAttestation } from '../../shared/attestation/attested-tls.js';
import { AttestationError } from '../../shared/attestation/errors.js';
import { type ValidityInstant, verifyAttestation } from '../../shared/attestation/verify.js';
import { parsePcrFlags, usageReporter, verifyArguments, VERIFY_FAILED } from './verify-flags.js';

export const ATTESTATION_USAGE = `Usage: enclaver-proxy attestation verify FILE [options]
       enclaver-proxy attestation check https://HOST[:PORT] --pcr N=HEX [options]

Verifies a Nitro Enclaves attestation document (COSE_Sign1, raw CBOR or base64; FILE - reads
stdin): the ES384 signature, the certificate chain up to the pinned root, every certificate's
validity at the chosen time, and the PCRs and nonce you expect.

Options:
  --root PEM          trust this root certificate instead of the AWS Nitro Enclaves root G1
  --at WHEN           document (default: the document's own timestamp), now, or an ISO date
  --pcr N=HEX         expect PCR N to equal HEX (repeatable)
  --nonce HEX         expect this nonce (verify only; check always sends a fresh random one)

check connects to an attested TLS listener (tls.certificate: attested), fetches a document with a
fresh nonce over that same connection, verifies it as above, and requires that its user_data binds
the TLS key of this connection: a parent (or anyone) terminating TLS with its own key fails. When
the certificate also carries a document (tls.embed_attestation), that one must verify and bind the
key as well (checked at the present time, or --at DATE: it has no nonce of ours).
`;

const usage = usageReporter('attestation', ATTESTATION_USAGE);

/** Raw CBOR starts with an array (0x84) or tag 18 (0xd2); anything else is tried as base64. */
function documentBytes(raw: Buffer): Buffer {
  if (raw[0] === 0x84 || raw[0] === 0xd2) return raw;
  const text = raw.toString('latin1').replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : raw;
}

function parseAt(text: string | undefined): ValidityInstant | null {
  if (text === undefined || text === 'document') return 'document';
  if (text === 'now') return 'now';
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function attestationCommand(args: string[]): number | Promise<number> {
  const parsed = verifyArguments('attestation', ATTESTATION_USAGE, args, ['verify', 'check'], {
    root: { type: 'string' },
    at: { type: 'string' },
    pcr: { type: 'string', multiple: true },
    nonce: { type: 'string' },
  });
  if ('exit' in parsed) return parsed.exit;
  const { values, subcommand, operands } = parsed;
  const at = parseAt(values.at);
  if (!at) return usage(`--at must be document, now or an ISO date, not "${values.at}"`);
  const expectedPcrs = parsePcrFlags(values.pcr);
  if ('error' in expectedPcrs) return usage(expectedPcrs.error);
  if (subcommand === 'check') return checkCommand(operands, { at, expectedPcrs, root: values.root, nonce: values.nonce });
  const file = operands[0];
  if (!file || operands.length > 1) return usage('give exactly one FILE');
  if (values.nonce !== undefined && !/^([0-9a-fA-F]{2})+$/.test(values.nonce)) return usage('--nonce must be hex');

  let bytes: Buffer;
  let root: string | undefined;
  try {
    bytes = documentBytes(fs.readFileSync(file === '-' ? 0 : file));
    root = values.root === undefined ? undefined : fs.readFileSync(values.root, 'utf8');
  } catch (err) {
    return usage((err as Error).message);
  }

  try {
    const { document, tagged, checkedAt } = verifyAttestation(bytes, {
      at,
      expectedPcrs,
      ...(root ? { root } : {}),
      ...(values.nonce ? { expectedNonce: Buffer.from(values.nonce, 'hex') } : {}),
    });
    const hex = (b: Buffer | null) => (b ? b.toString('hex') : null);
    process.stdout.write(
      `${JSON.stringify(
        {
          verified: true,
          checked_at: checkedAt.toISOString(),
          cose: tagged ? 'tagged' : 'untagged',
          module_id: document.moduleId,
          timestamp: new Date(document.timestamp).toISOString(),
          pcrs: Object.fromEntries([...document.pcrs].map(([i, v]) => [i, v.toString('hex')])),
          public_key: hex(document.publicKey),
          user_data: hex(document.userData),
          nonce: hex(document.nonce),
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    process.stderr.write(`attestation verify: ${err.code}: ${err.message}\n`);
    return VERIFY_FAILED;
  }
}

interface CheckSettings {
  at: ValidityInstant;
  expectedPcrs: Map<number, string>;
  root: string | undefined;
  nonce: string | undefined;
}

function openTls(url: URL): Promise<tls.TLSSocket> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    // The certificate is self-signed: its trust is the attestation checked next, not a CA.
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function checkCommand(args: string[], s: CheckSettings): Promise<number> {
  const [target, ...extra] = args;
  if (target === undefined || extra.length > 0) return usage('give exactly one https://HOST[:PORT]');
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return usage(`not a URL: ${target}`);
  }
  if (url.protocol !== 'https:') return usage('attestation check needs an https:// URL');
  if (s.expectedPcrs.size === 0) return usage('give at least one --pcr N=HEX: a check that expects no PCRs proves nothing');
  if (s.nonce !== undefined) return usage('--nonce is for verify; check sends a fresh random nonce itself');
  let root: string | undefined;
  try {
    root = s.root === undefined ? undefined : fs.readFileSync(s.root, 'utf8');
  } catch (err) {
    return usage((err as Error).message);
  }
  let socket: tls.TLSSocket;
  try {
    socket = await openTls(url);
  } catch (err) {
    process.stderr.write(`attestation check: FAIL connect: ${(err as Error).message}\n`);
    return VERIFY_FAILED;
  }
  try {
    const options = { pcrs: s.expectedPcrs, at: s.at, ...(root ? { root } : {}) };
    const cert = peerCertificate(socket);
    // Both kinds of evidence when the certificate carries a document: a listener must pass each one it offers.
    const embedded = verifyEmbeddedAttestation(cert, options);
    const peer = await verifyAttestedPeer(socket, url.host, options, cert);
    process.stdout.write(
      `${JSON.stringify(
        {
          verdict: 'pass',
          url: url.origin,
          tls_spki_sha256: peer.spkiSha256,
          module_id: peer.document.moduleId,
          timestamp: new Date(peer.document.timestamp).toISOString(),
          pcrs: Object.fromEntries([...s.expectedPcrs.keys()].map((i) => [i, peer.document.pcrs.get(i)?.toString('hex')])),
          embedded_attestation: embedded ? { verdict: 'pass', timestamp: new Date(embedded.document.timestamp).toISOString() } : 'absent',
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    process.stderr.write(`attestation check: FAIL ${err.code}: ${err.message}\n`);
    return VERIFY_FAILED;
  } finally {
    socket.destroy();
  }
}
