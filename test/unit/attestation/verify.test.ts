import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from '../../../shared/attestation/aws-root.js';
import { cborDecoder, cborEncoder, decodeCoseSign1, signCoseSign1 } from '../../../shared/attestation/cose.js';
import { encodeAttestationDocument } from '../../../shared/attestation/document.js';
import { type Issued, issueCertificate } from '../../../proxy-inner/nsm/throwaway-ca.js';
import { AttestationError } from '../../../shared/attestation/errors.js';
import { verifyAttestation } from '../../../shared/attestation/verify.js';
import { vectorBytes, vectorJson } from '../../helpers/vectors.js';

interface Expected {
  module_id: string;
  timestamp: number;
  npcrs: number;
  cabundle: number;
  public_key_len: number | null;
  user_data_len: number | null;
  nonce_len: number | null;
  leaf_not_after: string;
  pcr0: string;
  pcr1: string;
  pcr2: string;
  pcr3: string;
  pcr4: string;
  pcr8: string;
}
const expected = vectorJson<Record<string, Expected>>('attestation/expected.json');
const FILES = Object.keys(expected);

function failure(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AttestationError, `expected an AttestationError, got ${String(err)}`);
    return err;
  }
  assert.fail('verification unexpectedly succeeded');
}

/** Re-encode the COSE array with one item replaced, keeping everything else byte-identical. */
function withCoseItem(bytes: Buffer, index: number, value: unknown): Buffer {
  const arr = cborDecoder.decode(bytes) as unknown[];
  arr[index] = value;
  return Buffer.from(cborEncoder.encode(arr));
}

describe('attestation verify against the real AWS documents', () => {
  it('bundles the AWS root whose DER fingerprint the vectors state', () => {
    const der = new crypto.X509Certificate(AWS_NITRO_ROOT_G1_PEM).raw;
    assert.equal(crypto.createHash('sha256').update(der).digest('hex'), AWS_NITRO_ROOT_G1_SHA256);
    assert.equal(vectorBytes('attestation/aws-nitro-root-g1.pem').toString().trim(), AWS_NITRO_ROOT_G1_PEM.trim());
  });

  for (const file of FILES) {
    const want = expected[file]!;
    it(`${file}: verifies as of its timestamp and decodes to the expected fields`, () => {
      const { document, tagged, checkedAt } = verifyAttestation(vectorBytes(`attestation/${file}`), { at: 'document' });
      assert.equal(tagged, false);
      assert.equal(checkedAt.getTime(), want.timestamp);
      assert.equal(document.moduleId, want.module_id);
      assert.equal(document.timestamp, want.timestamp);
      assert.equal(document.pcrs.size, want.npcrs);
      assert.equal(document.cabundle.length, want.cabundle);
      for (const i of [0, 1, 2, 3, 4, 8] as const) assert.equal(document.pcrs.get(i)!.toString('hex'), want[`pcr${i}`], `PCR${i}`);
      assert.equal(document.publicKey?.length ?? null, want.public_key_len);
      assert.equal(document.userData?.length ?? null, want.user_data_len);
      assert.equal(document.nonce?.length ?? null, want.nonce_len);
    });

    it(`${file}: is reported expired when checked now, naming the leaf and its end date`, () => {
      const err = failure(() => verifyAttestation(vectorBytes(`attestation/${file}`), { at: 'now' }));
      assert.equal(err.code, 'expired');
      assert.equal(err.context.certificate, 'leaf certificate');
      assert.equal(new Date(err.context.notAfter as string).getTime(), new Date(want.leaf_not_after).getTime());
    });

    it(`${file}: verifies in the tagged (tag 18) form too`, () => {
      const tagged = Buffer.concat([Buffer.from([0xd2]), vectorBytes(`attestation/${file}`)]);
      assert.equal(verifyAttestation(tagged).tagged, true);
    });
  }

  it('checks PCRs by index, in bytes or hex of either case, and names the mismatching one', () => {
    const doc = vectorBytes('attestation/prod-2022.cbor');
    const want = expected['prod-2022.cbor']!;
    verifyAttestation(doc, {
      expectedPcrs: new Map<number, Buffer | string>([
        [0, want.pcr0.toUpperCase()],
        [2, Buffer.from(want.pcr2, 'hex')],
      ]),
    });
    const wrong = failure(() =>
      verifyAttestation(doc, {
        expectedPcrs: new Map([
          [0, want.pcr0],
          [1, want.pcr0],
        ]),
      }),
    );
    assert.equal(wrong.code, 'pcr_mismatch');
    assert.equal(wrong.context.index, 1);
    assert.match(wrong.message, /^PCR1 mismatch/);
    assert.equal(failure(() => verifyAttestation(doc, { expectedPcrs: new Map([[20, want.pcr0]]) })).code, 'pcr_missing');
  });

  it('checks the nonce, including a document whose nonce is null', () => {
    const prod = vectorBytes('attestation/prod-2022.cbor');
    const { document } = verifyAttestation(prod);
    verifyAttestation(prod, { expectedNonce: document.nonce! });
    const flipped = Buffer.from(document.nonce!);
    flipped[0] = flipped[0]! ^ 1;
    assert.equal(failure(() => verifyAttestation(prod, { expectedNonce: flipped })).code, 'nonce_mismatch');
    const absent = failure(() => verifyAttestation(vectorBytes('attestation/debug-2022.cbor'), { expectedNonce: flipped }));
    assert.equal(absent.code, 'nonce_mismatch');
    assert.match(absent.message, /no nonce/);
  });

  it('refuses a pinned root the document does not chain to', () => {
    const other = vectorBytes('attestation/prod-2022.cbor');
    // Pin the document's own intermediate instead of the AWS root: a different, valid certificate.
    const intermediate = (cborDecoder.decode(decodeCoseSign1(other).payload) as Map<string, Buffer[]>).get('cabundle')![1]!;
    const err = failure(() => verifyAttestation(other, { root: intermediate }));
    assert.equal(err.code, 'wrong_root');
    assert.match(String(err.context.rootSha256), new RegExp(AWS_NITRO_ROOT_G1_SHA256));
  });

  it('refuses a signature that does not match, and a payload altered after signing', () => {
    const doc = vectorBytes('attestation/debug-2022.cbor');
    const cose = decodeCoseSign1(doc);
    const sig = Buffer.from(cose.signature);
    sig[10] = sig[10]! ^ 0xff;
    assert.equal(failure(() => verifyAttestation(withCoseItem(doc, 3, sig))).code, 'bad_signature');
    const payload = cborDecoder.decode(cose.payload) as Map<string, unknown>;
    payload.set('user_data', Buffer.from('hello, world?'));
    assert.equal(failure(() => verifyAttestation(withCoseItem(doc, 2, Buffer.from(cborEncoder.encode(payload))))).code, 'bad_signature');
  });

  it('names malformed input and unsupported algorithms', () => {
    const doc = vectorBytes('attestation/debug-2022.cbor');
    assert.equal(failure(() => verifyAttestation(Buffer.from('not cbor at all \xff'))).code, 'malformed');
    assert.equal(failure(() => verifyAttestation(doc.subarray(0, 200))).code, 'malformed');
    const es256Header = Buffer.from(cborEncoder.encode(new Map([[1, -7]])));
    assert.equal(failure(() => verifyAttestation(withCoseItem(doc, 0, es256Header))).code, 'unsupported_algorithm');
    const payload = cborDecoder.decode(decodeCoseSign1(doc).payload) as Map<string, unknown>;
    payload.set('digest', 'SHA256');
    assert.equal(failure(() => verifyAttestation(withCoseItem(doc, 2, Buffer.from(cborEncoder.encode(payload))))).code, 'malformed');
  });

  it('checks validity at a chosen instant: before the leaf existed is not_yet_valid', () => {
    const doc = vectorBytes('attestation/prod-2022.cbor');
    assert.equal(failure(() => verifyAttestation(doc, { at: new Date('2022-10-13T08:00:00Z') })).code, 'not_yet_valid');
    verifyAttestation(doc, { at: new Date('2022-10-13T11:00:00Z') });
  });
});

describe('attestation verify: chain rules on minted chains', () => {
  const day = 86400_000;
  const from = new Date(Date.now() - day);
  const to = new Date(Date.now() + day);
  const root = issueCertificate({ commonName: 'root', validFrom: from, validTo: to, pathLen: 1 });
  const intermediate = issueCertificate({ commonName: 'intermediate', validFrom: from, validTo: to, pathLen: 0, issuer: root });
  const stranger = issueCertificate({ commonName: 'other intermediate', validFrom: from, validTo: to, pathLen: 0, issuer: root });

  function document(leaf: Issued, bundle: Buffer[]): Buffer {
    const payload = encodeAttestationDocument({
      moduleId: 'i-test',
      digest: 'SHA384',
      timestamp: Date.now(),
      pcrs: new Map([[0, Buffer.alloc(48)]]),
      certificate: leaf.der,
      cabundle: bundle,
      publicKey: null,
      userData: null,
      nonce: null,
    });
    return signCoseSign1(payload, leaf.privateKey);
  }

  it('accepts a well-formed chain', () => {
    const leaf = issueCertificate({ commonName: 'leaf', validFrom: from, validTo: to, issuer: intermediate });
    verifyAttestation(document(leaf, [root.der, intermediate.der]), { root: root.der });
  });

  it('names a leaf not signed by the intermediate the bundle carries', () => {
    const leaf = issueCertificate({ commonName: 'leaf', validFrom: from, validTo: to, issuer: stranger });
    const err = failure(() => verifyAttestation(document(leaf, [root.der, intermediate.der]), { root: root.der }));
    assert.equal(err.code, 'chain_invalid');
    assert.match(err.message, /leaf certificate is not signed by cabundle\[1\]/);
  });

  it('refuses a CA as the signing leaf, and a chain deeper than pathLen allows', () => {
    const caLeaf = issueCertificate({ commonName: 'ca leaf', validFrom: from, validTo: to, pathLen: 0, issuer: intermediate });
    assert.match(
      failure(() => verifyAttestation(document(caLeaf, [root.der, intermediate.der]), { root: root.der })).message,
      /leaf certificate is a CA/,
    );
    const deeper = issueCertificate({ commonName: 'deeper', validFrom: from, validTo: to, pathLen: 0, issuer: intermediate });
    const leaf = issueCertificate({ commonName: 'leaf', validFrom: from, validTo: to, issuer: deeper });
    const err = failure(() => verifyAttestation(document(leaf, [root.der, intermediate.der, deeper.der]), { root: root.der }));
    assert.equal(err.code, 'chain_invalid');
    assert.match(err.message, /allows 0 CAs below it/);
  });
});
