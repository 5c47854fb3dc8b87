/**
 * An EIF reader written for the tests only, from the format description and nothing in
 * builder/: it parses the header with plain offsets, recomputes the CRC over the file bytes
 * (header minus its CRC field, then each section header and payload in table order) with zlib,
 * and the PCRs with node:crypto. If the builder and this disagree, one of them is wrong.
 * A signature section (nitro-cli's: CBOR `[{signing_certificate, signature}]`, byte fields as
 * arrays of integers, an untagged COSE_Sign1 over `{register_index: 0, register_value: PCR0}`)
 * is decoded with cbor-x and checked with node:crypto against RFC 8152's Sig_structure.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { Decoder, Encoder } from 'cbor-x';

export interface IndependentSignature {
  certificatePem: string;
  /** From the COSE protected header: ES256 (-7), ES384 (-35), ES512 (-36). */
  algorithm: string;
  signedPcr0: string;
  /** The COSE signature verifies with the certificate's key, on the curve the algorithm names. */
  valid: boolean;
}

export interface IndependentEif {
  version: number;
  flags: number;
  sections: { type: number; offset: number; size: number; payload: Buffer }[];
  storedCrc: number;
  computedCrc: number;
  pcrs: Record<string, string>;
  signature: IndependentSignature | undefined;
}

// RFC 8152 §8.1: each ECDSA algorithm fixes the curve and the hash.
const COSE_ECDSA: Record<number, { name: string; hash: string; curve: string }> = {
  [-7]: { name: 'ES256', hash: 'sha256', curve: 'prime256v1' },
  [-35]: { name: 'ES384', hash: 'sha384', curve: 'secp384r1' },
  [-36]: { name: 'ES512', hash: 'sha512', curve: 'secp521r1' },
};

function readSignature(section: Buffer): IndependentSignature {
  const objects = new Decoder({ mapsAsObjects: true, useRecords: false });
  const [entry] = objects.decode(section) as { signing_certificate: number[]; signature: number[] }[];
  const certificatePem = Buffer.from(entry!.signing_certificate);
  const maps = new Decoder({ mapsAsObjects: false, useRecords: false });
  const [protectedHeader, , payload, signature] = maps.decode(Buffer.from(entry!.signature)) as [Buffer, unknown, Buffer, Buffer];
  const alg = COSE_ECDSA[(maps.decode(protectedHeader) as Map<number, number>).get(1)!]!;
  const info = objects.decode(payload) as { register_index: number; register_value: number[] };
  const key = new crypto.X509Certificate(certificatePem).publicKey;
  const toBeSigned = new Encoder({ useRecords: false }).encode(['Signature1', protectedHeader, Buffer.alloc(0), payload]);
  const valid =
    info.register_index === 0 &&
    key.asymmetricKeyDetails?.namedCurve === alg.curve &&
    crypto.verify(alg.hash, toBeSigned, { key, dsaEncoding: 'ieee-p1363' }, signature);
  return {
    certificatePem: certificatePem.toString(),
    algorithm: alg.name,
    signedPcr0: Buffer.from(info.register_value).toString('hex'),
    valid,
  };
}

const sha384 = (...parts: Buffer[]) => {
  const h = crypto.createHash('sha384');
  for (const p of parts) h.update(p);
  return h.digest();
};
export const pcrOf = (...parts: Buffer[]) => sha384(Buffer.alloc(48), sha384(...parts)).toString('hex');

export function readEifIndependently(file: string): IndependentEif {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 4) !== '.eif') throw new Error('no .eif magic');
  const count = b.readUInt16BE(26);
  const sections: IndependentEif['sections'] = [];
  let crc = zlib.crc32(b.subarray(0, 544));
  for (let i = 0; i < count; i++) {
    const offset = Number(b.readBigUInt64BE(28 + 8 * i));
    const size = Number(b.readBigUInt64BE(28 + 256 + 8 * i));
    const type = b.readUInt16BE(offset);
    if (Number(b.readBigUInt64BE(offset + 4)) !== size) throw new Error(`section ${i}: size disagrees with the header`);
    const payload = b.subarray(offset + 12, offset + 12 + size);
    crc = zlib.crc32(b.subarray(offset, offset + 12 + size), crc);
    sections.push({ type, offset, size, payload });
  }
  const of = (t: number) => sections.filter((s) => s.type === t).map((s) => s.payload);
  const [kernel] = of(1);
  const [cmdline] = of(2);
  const ramdisks = of(3);
  const pcrs: Record<string, string> = {
    PCR0: pcrOf(kernel!, cmdline!, ...ramdisks),
    PCR1: pcrOf(kernel!, cmdline!, ramdisks[0]!),
    PCR2: pcrOf(...ramdisks.slice(1)),
  };
  const [signatureSection] = of(4);
  const signature = signatureSection ? readSignature(signatureSection) : undefined;
  if (signature) pcrs.PCR8 = pcrOf(new crypto.X509Certificate(signature.certificatePem).raw);
  return {
    version: b.readUInt16BE(4),
    flags: b.readUInt16BE(6),
    sections,
    storedCrc: b.readUInt32BE(544),
    computedCrc: crc >>> 0,
    pcrs,
    signature,
  };
}
