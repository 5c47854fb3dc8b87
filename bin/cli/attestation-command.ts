/**
 * `enclaver-proxy attestation verify FILE [--root PEM] [--at document|now|ISO] [--pcr N=HEX …]
 * [--nonce HEX]`: verify a Nitro attestation document (raw CBOR or base64) and print what it
 * attests. Exit 0 when it verifies, 1 with the named failure when it does not, 2 on usage errors.
 */
import fs from 'node:fs';
import { AttestationError } from '../../shared/attestation/errors.js';
import { type ValidityInstant, verifyAttestation } from '../../shared/attestation/verify.js';
import { parsePcrFlags, usageReporter, verifyArguments, VERIFY_FAILED } from './verify-flags.js';

export const ATTESTATION_USAGE = `Usage: enclaver-proxy attestation verify FILE [options]

Verifies a Nitro Enclaves attestation document (COSE_Sign1, raw CBOR or base64; FILE - reads
stdin): the ES384 signature, the certificate chain up to the pinned root, every certificate's
validity at the chosen time, and the PCRs and nonce you expect.

Options:
  --root PEM          trust this root certificate instead of the AWS Nitro Enclaves root G1
  --at WHEN           document (default: the document's own timestamp), now, or an ISO date
  --pcr N=HEX         expect PCR N to equal HEX (repeatable)
  --nonce HEX         expect this nonce
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

export function attestationCommand(args: string[]): number {
  const parsed = verifyArguments('attestation', ATTESTATION_USAGE, args, {
    root: { type: 'string' }, at: { type: 'string' }, pcr: { type: 'string', multiple: true }, nonce: { type: 'string' },
  });
  if ('exit' in parsed) return parsed.exit;
  const { values, files } = parsed;
  const file = files[0];
  if (!file || files.length > 1) return usage('give exactly one FILE');
  const at = parseAt(values.at);
  if (!at) return usage(`--at must be document, now or an ISO date, not "${values.at}"`);
  const expectedPcrs = parsePcrFlags(values.pcr);
  if ('error' in expectedPcrs) return usage(expectedPcrs.error);
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
      at, expectedPcrs, ...(root ? { root } : {}), ...(values.nonce ? { expectedNonce: Buffer.from(values.nonce, 'hex') } : {}),
    });
    const hex = (b: Buffer | null) => (b ? b.toString('hex') : null);
    process.stdout.write(`${JSON.stringify({
      verified: true,
      checked_at: checkedAt.toISOString(),
      cose: tagged ? 'tagged' : 'untagged',
      module_id: document.moduleId,
      timestamp: new Date(document.timestamp).toISOString(),
      pcrs: Object.fromEntries([...document.pcrs].map(([i, v]) => [i, v.toString('hex')])),
      public_key: hex(document.publicKey),
      user_data: hex(document.userData),
      nonce: hex(document.nonce),
    }, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    process.stderr.write(`attestation verify: ${err.code}: ${err.message}\n`);
    return VERIFY_FAILED;
  }
}
